"""The files `LabPki` writes are the certificates Direct Routing asks for [S1][S8], read back."""

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from simulator.pki import issue
from simulator.pki.store import LabPki
from tests.support.pki import PROXY, SBC

NOW = dt.datetime.now(dt.UTC)


def certs(path):
    return x509.load_pem_x509_certificates(path.read_bytes())


def test_root_is_a_self_signed_ca(lab_pki):
    (root,) = certs(lab_pki.ca_path)
    assert root.issuer == root.subject
    assert issue.issued_by(root, root)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True


def test_intermediate_is_a_ca_issued_by_the_root_that_issues_no_further_cas(lab_pki):
    (root,) = certs(lab_pki.ca_path)
    (intermediate,) = certs(lab_pki.dir / "intermediate.pem")
    constraints = intermediate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    assert issue.issued_by(intermediate, root)


@pytest.mark.parametrize("fqdn", [SBC, PROXY])
def test_leaf_file_is_leaf_then_intermediate_with_cn_san_eku_of_the_fqdn(lab_pki, fqdn):
    identity = lab_pki.identity(fqdn)
    assert identity.cert_path == lab_pki.dir / f"{fqdn}.pem"
    assert identity.key_path == lab_pki.dir / f"{fqdn}.key"
    leaf, intermediate = certs(identity.cert_path)
    assert issue.issued_by(leaf, intermediate)
    assert issue.issued_by(intermediate, certs(lab_pki.ca_path)[0])
    assert issue.common_name(leaf) == fqdn
    assert issue.dns_names(leaf) == (fqdn,)
    assert issue.eku_names(leaf) == ("serverAuth", "clientAuth")
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert leaf.not_valid_before_utc <= NOW < leaf.not_valid_after_utc


def test_leaf_key_is_rsa_2048_and_belongs_to_the_certificate(lab_pki):
    identity = lab_pki.identity(SBC)
    key = load_pem_private_key(identity.key_path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert key.public_key().public_numbers() == certs(identity.cert_path)[0].public_key().public_numbers()


def test_private_keys_are_readable_by_the_owner_only(lab_pki):
    assert lab_pki.identity(SBC).key_path.stat().st_mode & 0o077 == 0
    assert (lab_pki.dir / "ca.key").stat().st_mode & 0o077 == 0


def test_ec_keys_on_request(tmp_path):
    identity = LabPki(tmp_path, key="ec-p256").identity(SBC)
    key = load_pem_private_key(identity.key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"


@pytest.mark.parametrize("text", ["rsa-1024", "dsa-2048", "ec-p521", ""])
def test_unknown_key_types_are_refused_with_the_choices(text):
    with pytest.raises(ValueError, match="rsa-2048, rsa-3072, rsa-4096, ec-p256 or ec-p384"):
        LabPki("unused", key=text)


@pytest.mark.parametrize("fqdn", ["sbc1", "sbc_1.contoso.com", "-sbc.contoso.com", "a..b", "*.contoso.com",
                                  "../etc.passwd", "x" * 64 + ".com"])
def test_names_that_are_not_fqdns_are_refused_before_anything_is_written(tmp_path, fqdn):
    with pytest.raises(ValueError, match="not a fully qualified domain name"):
        LabPki(tmp_path).ensure([fqdn])
    assert list(tmp_path.iterdir()) == []


def test_fqdns_are_lower_cased_and_lose_a_trailing_dot(tmp_path):
    ids = LabPki(tmp_path).ensure(["SBC1.Contoso.COM."], variants=())
    assert list(ids) == ["sbc1.contoso.com"]
    assert (tmp_path / "sbc1.contoso.com.pem").exists()
