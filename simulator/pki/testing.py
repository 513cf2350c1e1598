"""A lab PKI for test suites, issued once per test session.

    # tests/<area>/conftest.py
    from simulator.pki.testing import lab_pki  # noqa: F401  (the fixture)

    def test_x(lab_pki): lab_pki.identity(SBC), lab_pki.broken("expired", SBC), lab_pki.ca_path

Every folder importing the fixture shares the same directory under pytest's session temp dir;
the first user issues it (about a second of RSA-2048 key generation: Direct Routing's
ECDHE-RSA suites need RSA keys, and OpenSSL's security level 2 needs 2048 bits), later users
find it valid and reuse it in milliseconds.
"""

from __future__ import annotations

import pytest

from simulator.pki.lab import LabPki
from simulator.pki.variants import VARIANTS

SBC = "sbc1.contoso.com"
PROXY = "sip.pstnhub.microsoft.com"
TEST_FQDNS = (SBC, PROXY, "sip2.pstnhub.microsoft.com", "sip3.pstnhub.microsoft.com", "sba1.contoso.com")


def issue_test_pki(directory) -> LabPki:
    pki = LabPki(directory)
    pki.ensure(TEST_FQDNS, variants=())
    for variant in VARIANTS:  # the catalogue for the SBC and the proxy only: keys cost time
        for fqdn in (SBC, PROXY):
            pki.broken(variant, fqdn)
    return pki


@pytest.fixture(scope="session")
def lab_pki(tmp_path_factory: pytest.TempPathFactory) -> LabPki:
    return issue_test_pki(tmp_path_factory.getbasetemp() / "lab-pki")
