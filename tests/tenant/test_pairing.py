"""The tenant side of SBC pairing [S1] [S3]: a gateway FQDN must be in a domain the tenant
registered, never `*.onmicrosoft.com`, never an IP address; each format says so at the gateway."""

from __future__ import annotations

import json

import pytest

from simulator.tenant.cli import load_tenant_with_warnings
from simulator.tenant.errors import TenantError
from simulator.tenant.export_loader import load_export
from simulator.tenant.model import pairing_refusal
from simulator.tenant.ps_loader import run_powershell
from simulator.tenant.yaml_loader import parse_yaml

DOMAINS = ("contoso.com", "sip.fabrikam.com")


@pytest.mark.parametrize("fqdn,refused_because", [
    ("sbc1.contoso.com", None),
    ("SBC1.Contoso.com.", None),
    ("sbc1.sip.fabrikam.com", None),
    ("sbc1.sip.contoso.com", "Can't use the \"sbc1.sip.contoso.com\" domain as it wasn't configured for this tenant"),
    ("sbc1.fabrikam.com", "'fabrikam.com' is not one of its registered domains"),
    ("sbc1.contoso.onmicrosoft.com", "cannot be in a *.onmicrosoft.com domain"),
    ("192.0.2.10", "never an IP address"),
    ("[2001:db8::1]", "never an IP address"),
])
def test_pairing_rules(fqdn, refused_because) -> None:
    refusal = pairing_refusal(fqdn, DOMAINS)
    if refused_because is None:
        assert refusal is None
    else:
        assert refused_because in refusal


YAML = """\
domains: [contoso.com]
gateways:
  - {fqdn: sbc1.contoso.com, sip_signaling_port: 5061}
  - {fqdn: FQDN, sip_signaling_port: 5061}
"""


@pytest.mark.parametrize("fqdn,message", [
    ("sbc9.fabrikam.com", "wasn't configured for this tenant"),
    ("sbc1.contoso.onmicrosoft.com", "*.onmicrosoft.com"),
    ("10.0.0.1", "never an IP address"),
])
def test_a_yaml_gateway_that_cannot_pair_is_an_error_at_the_gateway(fqdn, message) -> None:
    with pytest.raises(TenantError) as err:
        parse_yaml(YAML.replace("FQDN", fqdn), "t.yaml")
    assert str(err.value).startswith("t.yaml:4:5: PSTN gateway ") and message in str(err.value)


@pytest.mark.parametrize("domain,message", [
    ("10.0.0.1", "not the IP address"), ("contoso", "a DNS name like contoso.com"), ("bad_name.com", "DNS name"),
])
def test_a_registered_domain_must_be_a_dns_name(domain, message) -> None:
    with pytest.raises(TenantError) as err:
        parse_yaml(f"domains: [contoso.com, '{domain}']\n", "t.yaml")
    assert str(err.value).startswith("t.yaml:1:") and message in str(err.value)


def test_a_runbook_registers_domains_with_new_mgdomain() -> None:
    text = ("New-CsOnlinePSTNGateway -Fqdn sbc1.sip.contoso.com -SipSignalingPort 5061\n"
            "New-MgDomain -Id sip.contoso.com\n")
    tenant, warnings = run_powershell(text, "r.ps1")
    tenant.validate()
    assert tenant.domains == ("sip.contoso.com",) and warnings == []


def test_a_runbook_gateway_outside_the_registered_domains_is_an_error_at_its_cmdlet() -> None:
    text = "New-MgDomain -Id contoso.com\nNew-CsOnlinePSTNGateway -Fqdn sbc1.sip.contoso.com -SipSignalingPort 5061\n"
    tenant, _ = run_powershell(text, "r.ps1")
    with pytest.raises(TenantError, match=r"^r\.ps1:2:\d+: PSTN gateway 'sbc1.sip.contoso.com': Can't use"):
        tenant.validate()


def test_new_mgdomain_refuses_what_is_not_a_domain() -> None:
    with pytest.raises(TenantError, match=r"^r\.ps1:1:18: a registered domain is a DNS name"):
        run_powershell("New-MgDomain -Id 192.0.2.1\n", "r.ps1")


def test_without_domains_the_users_upn_domains_stand_in_with_a_warning(tmp_path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("gateways:\n  - {fqdn: sbc1.contoso.com, sip_signaling_port: 5061}\n"
                    "users:\n  - {upn: alice@contoso.com}\n", encoding="utf-8")
    tenant, warnings = load_tenant_with_warnings(str(path))
    assert tenant.registered_domains() == ("contoso.com",)
    [warning] = warnings
    assert "lists no registered domains" in str(warning) and "(contoso.com)" in str(warning)
    path.write_text(path.read_text().replace("alice@contoso.com", "alice@fabrikam.com"), encoding="utf-8")
    with pytest.raises(TenantError, match="'contoso.com' is not one of its registered domains \\(fabrikam.com\\)"):
        load_tenant_with_warnings(str(path))


def _export(folder, tenant_json) -> None:
    folder.mkdir()
    files = {"usages.json": {"Identity": "Global", "Usage": []},
             "gateways.json": [{"Identity": "sbc1.contoso.com", "SipSignalingPort": 5061}],
             "routes.json": [], "policies.json": [], "users.json": [],
             "tenant.json": tenant_json}
    for name, data in files.items():
        (folder / name).write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize("tenant_json,domains", [
    ({"VerifiedDomains": [{"Name": "contoso.com", "Status": "Enabled"}, {"Name": "contoso.onmicrosoft.com"}]},
     ("contoso.com", "contoso.onmicrosoft.com")),
    ({"SipDomain": ["Contoso.com"]}, ("contoso.com",)),
])
def test_an_export_reads_the_domains_get_cstenant_prints(tmp_path, tenant_json, domains) -> None:
    _export(tmp_path / "x", tenant_json)
    assert load_export(tmp_path / "x").domains == domains


def test_an_export_gateway_outside_the_domains_is_an_error_at_its_json_path(tmp_path) -> None:
    _export(tmp_path / "x", {"VerifiedDomains": [{"Name": "fabrikam.com"}]})
    with pytest.raises(TenantError, match=r"gateways\.json:1:2: \$\[0\]: PSTN gateway 'sbc1.contoso.com'"):
        load_export(tmp_path / "x")
