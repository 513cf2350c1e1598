"""Fixtures for endpoint tests: the session's lab PKI (simulator.pki.testing)."""

import pytest

from simulator.pki.testing import session_pki


@pytest.fixture(scope="session")
def lab_pki(tmp_path_factory):
    return session_pki(tmp_path_factory)
