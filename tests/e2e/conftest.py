from tests.lab.fixtures import lab_certs  # noqa: F401  (one certificate directory per session)
