"""The Teams cloud's shared state: gateway pairing from the live tenant, registrations, SBA sync, CDR intake."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from simulator.roles.cdr import CallPath, CdrDraft, Direction, result_for
from simulator.roles.gateway_health import Health
from simulator.roles.settings import RoleSettings
from simulator.roles.teams_cloud import Registration, TeamsCloud
from simulator.tenant.cli import load_tenant

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contoso.yaml"


@pytest.fixture
def cloud() -> TeamsCloud:
    return TeamsCloud(load_tenant(str(EXAMPLE)), RoleSettings())


def test_every_tenant_gateway_is_watched_and_starts_inactive(cloud):
    changes = cloud.refresh_gateways(0.0)
    assert {c.gateway for c in changes} == {"sbc1.contoso.com", "sbc2.contoso.com", "sbc-sea.contoso.com",
                                            "sbc-pun.contoso.com"}
    assert all(c.new is Health.INACTIVE for c in changes)
    assert cloud.refresh_gateways(1.0) == []


def test_tenant_edits_reach_gateway_health(cloud):
    cloud.refresh_gateways(0.0)
    cloud.health.options_received("sbc1.contoso.com", "noam", 1.0)
    gw = cloud.tenant.gateways["sbc1.contoso.com"]
    cloud.tenant.gateways["sbc1.contoso.com"] = replace(gw, enabled=False)  # Set-CsOnlinePSTNGateway -Enabled $false
    [change] = cloud.refresh_gateways(2.0)
    assert (change.gateway, change.new) == ("sbc1.contoso.com", Health.DISABLED)
    del cloud.tenant.gateways["sbc2.contoso.com"]
    cloud.refresh_gateways(3.0)
    assert "sbc2.contoso.com" not in cloud.health.gateways()


def test_only_active_gateways_are_healthy_for_routing(cloud):
    cloud.refresh_gateways(0.0)
    cloud.health.options_received("sbc1.contoso.com", "noam", 0.0)
    health = cloud.routing_health(10.0, "noam")
    assert health == {"sbc-sea.contoso.com": False, "sbc1.contoso.com": True, "sbc2.contoso.com": False,
                      "sbc-pun.contoso.com": False}
    assert cloud.routing_health(400.0, "noam")["sbc1.contoso.com"] is False  # demoted after 5 min


def test_demoted_mode_follows_the_setting():
    tenant = load_tenant(str(EXAMPLE))
    assert TeamsCloud(tenant).demoted_mode == "last"
    assert TeamsCloud(tenant, RoleSettings(demoted_gateways="skipped")).demoted_mode == "excluded"


def reg(upn: str, conn: object, at: float = 0.0, expires: float = 3600.0, proxy: str = "sip") -> Registration:
    return Registration(upn, proxy, conn, f"sip:{upn.split('@')[0]}@10.0.0.1;transport=tls", at, at + expires)


def test_registration_binds_refreshes_and_expires(cloud):
    a, b = object(), object()
    cloud.register(reg("carol@contoso.com", a))
    cloud.register(reg("Carol@contoso.com", b, at=5.0, expires=10.0))
    assert [r.connection for r in cloud.registrations_of("carol@contoso.com", 6.0)] == [b, a]  # newest first
    assert cloud.register(reg("carol@contoso.com", a, at=7.0)) is not None  # refresh replaces
    assert [r.connection for r in cloud.registrations_of("carol@contoso.com", 16.0)] == [a]  # b expired
    assert cloud.registration_on(a, 16.0).upn == "carol@contoso.com"


def test_closed_connection_unbinds_only_its_registrations(cloud):
    a, b = object(), object()
    cloud.register(reg("carol@contoso.com", a))
    cloud.register(reg("dave@contoso.com", b))
    gone = cloud.unregister_connection(a)
    assert [r.upn for r in gone] == ["carol@contoso.com"]
    assert cloud.registrations_of("carol@contoso.com", 1.0) == []
    assert len(cloud.registrations_of("dave@contoso.com", 1.0)) == 1
    assert cloud.unregister("dave@contoso.com", b) is not None
    assert cloud.registrations_of("dave@contoso.com", 1.0) == []


def sync_body(sba: str = "sba1.contoso.com", have: int = 0) -> bytes:
    return json.dumps({"sba": sba, "have_version": have}).encode()


def test_sync_serves_the_branch_configuration_with_a_version(cloud):
    reply = cloud.sync_reply(sync_body())
    assert reply.status == 200 and reply.content_type == "application/vnd.drlab.sba-sync+json"
    config = json.loads(reply.body)
    upns = {u["upn"] for u in config["users"]}
    assert upns == {"carol@contoso.com", "dave@contoso.com", "erin@contoso.com"}  # SBA policy SEA lists sba1
    assert reply.fields["version"] == 1 and reply.fields["identified_by"] == "body"
    assert cloud.sync_reply(sync_body(have=1)).fields["version"] == 1  # same content, same version


def test_sync_version_grows_when_the_branch_changes(cloud):
    cloud.sync_reply(sync_body())
    carol = cloud.tenant.users["carol@contoso.com"]
    cloud.tenant.users["carol@contoso.com"] = replace(carol, phone_number="+12065550299")
    assert cloud.sync_reply(sync_body(have=1)).fields["version"] == 2


def test_sync_by_certificate_of_the_sba(cloud):
    reply = cloud.sync_reply(sync_body(), peer_names=("sba1.contoso.com",))
    assert reply.status == 200 and reply.fields["identified_by"] == "certificate"


@pytest.mark.parametrize("body, names, status", [
    (sync_body("sba9.contoso.com"), None, 403),  # not listed in the tenant
    (sync_body("sba1.contoso.com"), ("sbc1.contoso.com",), 403),  # certificate names someone else
    (b"not json", None, 400),
    (json.dumps({"have_version": 1}).encode(), None, 400),
])
def test_sync_refusals(cloud, body, names, status):
    reply = cloud.sync_reply(body, peer_names=names)
    assert reply.status == status and reply.event == "cloud.sync_refused" and reply.fields["reason"]


def cdr(call_id: str, end: float = 20.0):
    return CdrDraft(call_id, "+12065550201", "+14255550123", Direction.OUTBOUND, CallPath.SBA, "sba1.contoso.com",
                    10.0).finish(end, result_for("all_gateways_failed"))


def upload(*cdrs) -> bytes:
    return json.dumps({"cdrs": [c.to_dict() for c in cdrs]}).encode()


def test_cdr_upload_is_idempotent(cloud):
    first = cloud.cdr_upload(upload(cdr("a"), cdr("b")), uploader="sba1.contoso.com")
    assert first.status == 200 and json.loads(first.body) == {"accepted": ["sba1.contoso.com:a", "sba1.contoso.com:b"]}
    again = cloud.cdr_upload(upload(cdr("b"), cdr("c")))  # the acknowledgement of b was lost
    assert json.loads(again.body)["accepted"] == ["sba1.contoso.com:b", "sba1.contoso.com:c"]
    assert (again.fields["new"], again.fields["duplicates"]) == (1, 1)
    assert sorted(cloud.cdrs.records) == ["sba1.contoso.com:a", "sba1.contoso.com:b", "sba1.contoso.com:c"]


def test_cdr_upload_conflict_refuses_the_whole_batch(cloud):
    cloud.cdr_upload(upload(cdr("a")))
    reply = cloud.cdr_upload(upload(cdr("z"), cdr("a", end=30.0)))
    assert reply.status == 409 and "different content" in reply.fields["reason"]
    assert "sba1.contoso.com:z" not in cloud.cdrs.records


@pytest.mark.parametrize("body", [b"{", b'{"cdrs": [{"cdr_id": "x"}]}', b'{"nope": []}'])
def test_bad_cdr_upload_is_400(cloud, body):
    reply = cloud.cdr_upload(body)
    assert reply.status == 400 and reply.fields["reason"]
