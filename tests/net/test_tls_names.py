"""`certificate_matches`: the host-name rule the server side and `PeerInfo.matches` apply, which is
the one OpenSSL applies on the client (RFC 6125 §6.4, RFC 2818 §3.1, reference §1.4-1.5)."""

import pytest
from cryptography import x509

from simulator.net.tls import certificate_matches
from simulator.pki.testing import SBC, session_pki


@pytest.fixture(scope="session")
def lab_pki(tmp_path_factory):
    return session_pki(tmp_path_factory)


def leaf(lab_pki, variant):
    identity = lab_pki.identity(SBC) if variant == "good" else lab_pki.broken(variant, SBC)
    return x509.load_pem_x509_certificates(identity.cert_path.read_bytes())[0]


@pytest.mark.parametrize("variant, name, cn_fallback, matches", [
    ("good", SBC, True, True),
    ("good", "SBC1.Contoso.COM.", True, True),  # DNS names compare without case or root dot
    ("good", "sbc2.contoso.com", True, False),
    ("wrong-san", SBC, True, False),  # CN says SBC, but a DNS SAN is present: CN ignored
    ("wrong-san", f"wrong-{SBC}", True, True),
    ("cn-only", SBC, True, True),  # no SAN at all: the CN fallback
    ("cn-only", SBC, False, False),
    ("wildcard", "sbc9.contoso.com", True, True),  # *.contoso.com: one label
    ("wildcard", "a.sbc1.contoso.com", True, False),  # two labels
    ("wildcard", "contoso.com", True, False),  # no label
    ("wildcard", ".contoso.com", True, False),  # an empty label is not a label
])
def test_certificate_names(lab_pki, variant, name, cn_fallback, matches):
    assert certificate_matches(leaf(lab_pki, variant), name, cn_fallback=cn_fallback) is matches
