"""Each broken variant differs from the good certificate in exactly the way its name says."""

import datetime as dt

import pytest
from cryptography import x509

from simulator.pki import issue
from simulator.pki.variants import CATALOGUE, VARIANTS, wildcard_for
from tests.support.pki import SBC

NOW = dt.datetime.now(dt.UTC)


def chain(lab_pki, variant):
    identity = lab_pki.broken(variant, SBC)
    assert identity.cert_path == lab_pki.dir / "broken" / variant / f"{SBC}.pem"
    assert identity.key_path == lab_pki.dir / "broken" / variant / f"{SBC}.key"
    assert identity.variant == variant
    return x509.load_pem_x509_certificates(identity.cert_path.read_bytes())


def lab_cert(lab_pki, name):
    return x509.load_pem_x509_certificate((lab_pki.dir / name).read_bytes())


# variant: (CN, SAN, EKU, certificates in the .pem, validity)
PROFILE = {
    "expired": (SBC, (SBC,), ("serverAuth", "clientAuth"), 2, "past"),
    "not-yet-valid": (SBC, (SBC,), ("serverAuth", "clientAuth"), 2, "future"),
    "wrong-san": (SBC, (f"wrong-{SBC}",), ("serverAuth", "clientAuth"), 2, "now"),
    "untrusted-ca": (SBC, (SBC,), ("serverAuth", "clientAuth"), 1, "now"),
    "missing-intermediate": (SBC, (SBC,), ("serverAuth", "clientAuth"), 1, "now"),
    "no-client-auth": (SBC, (SBC,), ("serverAuth",), 2, "now"),
    "cn-only": (SBC, (), ("serverAuth", "clientAuth"), 2, "now"),
    "wildcard": ("*.contoso.com", ("*.contoso.com",), ("serverAuth", "clientAuth"), 2, "now"),
}


def test_the_catalogue_and_the_profile_table_name_the_same_variants():
    assert set(VARIANTS) == set(PROFILE)


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_has_its_names_eku_chain_and_validity(lab_pki, variant):
    cn, sans, eku, length, when = PROFILE[variant]
    certs = chain(lab_pki, variant)
    leaf = certs[0]
    assert (issue.common_name(leaf), issue.dns_names(leaf), issue.eku_names(leaf), len(certs)) == (
        cn, sans, eku, length)
    start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    assert {"past": end < NOW, "future": start > NOW, "now": start <= NOW < end}[when]


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "untrusted-ca"])
def test_variant_is_issued_by_the_lab_intermediate(lab_pki, variant):
    assert issue.issued_by(chain(lab_pki, variant)[0], lab_cert(lab_pki, "intermediate.pem"))


def test_untrusted_ca_leaf_is_issued_by_a_second_root_that_is_not_the_lab_root(lab_pki):
    leaf = chain(lab_pki, "untrusted-ca")[0]
    other_root = x509.load_pem_x509_certificate(lab_pki.untrusted_ca_path.read_bytes())
    assert issue.issued_by(leaf, other_root)
    assert not issue.issued_by(leaf, lab_cert(lab_pki, "ca.pem"))
    assert other_root.subject != lab_cert(lab_pki, "ca.pem").subject


def test_every_variant_names_the_refusal_a_direct_routing_peer_gives_it():
    assert {v: CATALOGUE[v].refusal for v in VARIANTS} == {
        "expired": "tls.expired",
        "not-yet-valid": "tls.not_yet_valid",
        "wrong-san": "tls.name_mismatch",
        "untrusted-ca": "tls.unknown_ca",
        "missing-intermediate": "tls.unknown_ca",
        "no-client-auth": "tls.bad_eku",
        "cn-only": None,
        "wildcard": None,
    }


@pytest.mark.parametrize("fqdn, wildcard", [
    ("sbc1.contoso.com", "*.contoso.com"),
    ("sbc1.sip.contoso.com", "*.sip.contoso.com"),
])
def test_wildcard_covers_the_parent_domain(fqdn, wildcard):
    assert wildcard_for(fqdn) == wildcard


def test_no_wildcard_directly_under_a_top_level_domain(tmp_path):
    from simulator.pki.store import LabPki

    with pytest.raises(ValueError, match="parent domain needs at least two labels"):
        LabPki(tmp_path).broken("wildcard", "contoso.com")


def test_unknown_variant_lists_the_known_ones(lab_pki):
    with pytest.raises(ValueError, match="unknown certificate variant 'revoked'; known: expired, "):
        lab_pki.broken("revoked", SBC)
