from tests.lab.fixtures import contoso_tenant, lab_certs  # noqa: F401
