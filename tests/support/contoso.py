"""The Contoso example lab and tenant, as the lab, scenario and e2e tests load them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from simulator.tenant.cli import load_tenant
from simulator.tenant.model import Tenant

ROOT = Path(__file__).resolve().parents[2]
CONTOSO_LAB = ROOT / "examples" / "labs" / "contoso.yaml"
CONTOSO_TENANT = ROOT / "examples" / "contoso.yaml"


def contoso() -> Tenant:
    """examples/contoso.yaml, with erin@contoso.com (a third Seattle user) if the file lacks her."""
    tenant = load_tenant(str(CONTOSO_TENANT))
    if tenant.users.get("erin@contoso.com") is None:
        dave = tenant.user("dave@contoso.com")
        tenant.add("user", dataclasses.replace(dave, upn="erin@contoso.com", phone_number="+12065550203"))
    return tenant
