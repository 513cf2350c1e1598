from simulator.pki.testing import lab_pki  # noqa: F401
