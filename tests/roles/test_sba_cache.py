"""The SBA's own decisions: token rules, CDR buffering; and its cache of the branch (reference §3)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from simulator.roles.cdr import CallPath, CdrDraft, CdrStore, Direction, result_for
from simulator.roles.sba_cache import (
    BranchConfig,
    CachedDialPlan,
    CachedGateway,
    CachedPolicy,
    CachedRoute,
    CachedRule,
    CachedUser,
    CdrBuffer,
    ClientAdmission,
    SbaCache,
)
from simulator.roles.settings import DAY_S, RoleSettings

H = 3600.0
ALICE = "alice@contoso.com"


# --- token rules ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "grace_from, now, expect_ok, expect_reason",
    [
        # token: signed in at 0, expires at 1 h; client last seen at now - 60 (so the 24 h rule holds)
        ("token_expiry", 0.5 * H, True, "token valid"),
        ("token_expiry", 2 * H, True, "within grace"),
        ("token_expiry", 7 * DAY_S + H, True, "within grace"),
        ("token_expiry", 7 * DAY_S + H + 1, False, "beyond the 604800s grace (counted from token_expiry)"),
        ("last_authentication", 7 * DAY_S, True, "within grace"),
        ("last_authentication", 7 * DAY_S + 1, False, "beyond the 604800s grace (counted from last_authentication)"),
    ],
)
def test_expired_token_accepted_within_grace_refused_after(grace_from, now, expect_ok, expect_reason):
    admission = ClientAdmission(RoleSettings(token_grace_from=grace_from))
    admission.record_contact(ALICE, now - 60)
    verdict = admission.admit(ALICE, token_authenticated_at=0.0, token_expires_at=H, now=now)
    assert verdict.ok is expect_ok
    assert expect_reason in verdict.reason


@pytest.mark.parametrize(
    "seen_at, now, expect_ok",
    [(None, 100.0, False), (0.0, DAY_S, True), (0.0, DAY_S + 1, False), (500.0, DAY_S + 1, True)],
)
def test_client_not_seen_within_24h_is_refused(seen_at, now, expect_ok):
    admission = ClientAdmission(RoleSettings())
    if seen_at is not None:
        admission.record_contact("Alice@Contoso.com", seen_at)  # UPNs are case-insensitive
    verdict = admission.admit(ALICE, token_authenticated_at=now - 10, token_expires_at=now + H, now=now)
    assert verdict.ok is expect_ok
    if not expect_ok:
        assert "not seen within 86400s" in verdict.reason


def test_successful_registration_counts_as_contact():
    admission = ClientAdmission(RoleSettings())
    admission.record_contact(ALICE, 0.0)
    assert admission.admit(ALICE, token_authenticated_at=0.0, token_expires_at=3 * DAY_S, now=DAY_S - 1).ok
    assert admission.admit(ALICE, token_authenticated_at=0.0, token_expires_at=3 * DAY_S, now=2 * DAY_S - 2).ok


def test_client_without_token_is_refused():
    admission = ClientAdmission(RoleSettings())
    admission.record_contact(ALICE, 0.0)
    verdict = admission.admit(ALICE, token_authenticated_at=None, token_expires_at=None, now=10.0)
    assert not verdict.ok and "no token" in verdict.reason


@pytest.mark.parametrize("cae, now, expect_ok", [(False, 4000.0, True), (True, 1000.0, True), (True, 2000.0, True),
                                                  (True, 2001.0, False)])
def test_cae_token_served_about_thirty_minutes(cae, now, expect_ok):
    admission = ClientAdmission(RoleSettings(client_cae_tokens=cae))
    admission.record_contact(ALICE, 100.0)
    assert admission.admit(ALICE, token_authenticated_at=0.0, token_expires_at=DAY_S, now=200.0).ok  # first
    verdict = admission.admit(ALICE, token_authenticated_at=0.0, token_expires_at=DAY_S, now=now)
    assert verdict.ok is expect_ok
    if not expect_ok:
        assert "CAE token" in verdict.reason


# --- CDR buffer -----------------------------------------------------------------------------------
def sba_cdr(n: int):
    d = CdrDraft(call_id=f"call-{n}", caller="+12065550101", callee="+14255550100", direction=Direction.OUTBOUND,
                 path=CallPath.SBA, node="sba1.contoso.com", invite_at=float(n), gateway="sbc-sea.contoso.com")
    d.answered(n + 1.0)
    return d.finish(n + 30.0)


def test_cdr_upload_retry_neither_loses_nor_doubles():
    settings = RoleSettings(sba_cdr_upload_retry_s=30)
    buffer, cloud = CdrBuffer(settings), CdrStore()
    for n in range(3):
        assert buffer.add(sba_cdr(n))
    assert not buffer.add(sba_cdr(1))  # written twice: kept once

    # 1st upload: the link is cut before anything arrives
    assert buffer.upload_due(100.0)
    buffer.start_upload(100.0)
    assert not buffer.upload_due(100.0)  # one upload at a time
    assert buffer.upload_failed(100.0) == 130.0
    assert not buffer.upload_due(129.0) and buffer.upload_due(130.0)

    # 2nd upload: the cloud stores it, but the acknowledgement is lost
    cloud.ingest(buffer.start_upload(130.0))
    buffer.upload_failed(135.0)
    buffer.add(sba_cdr(3))  # a call ended meanwhile

    # 3rd upload: everything again plus the new record; the cloud acknowledges all
    batch = buffer.start_upload(165.0)
    assert [c.call_id for c in batch] == ["call-0", "call-1", "call-2", "call-3"]
    assert buffer.acknowledge(cloud.ingest(batch)) == 4

    assert buffer.pending == {} and buffer.uploaded == 4
    assert sorted(c.call_id for c in cloud.by_path(CallPath.SBA)) == ["call-0", "call-1", "call-2", "call-3"]
    assert len(cloud.records) == 4
    assert not buffer.upload_due(200.0)


def test_partial_acknowledgement_keeps_the_rest():
    buffer = CdrBuffer(RoleSettings())
    for n in range(3):
        buffer.add(sba_cdr(n))
    buffer.start_upload(0.0)
    assert buffer.acknowledge(["sba1.contoso.com:call-1", "unknown-id"]) == 1
    assert list(buffer.pending) == ["sba1.contoso.com:call-0", "sba1.contoso.com:call-2"]
    assert buffer.upload_due(0.0)


def test_same_id_different_content_is_refused_on_both_sides():
    buffer, cloud = CdrBuffer(RoleSettings()), CdrStore()
    first = sba_cdr(0)
    other = CdrDraft(call_id="call-0", caller="+1", callee="+2", direction=Direction.OUTBOUND, path=CallPath.SBA,
                     node="sba1.contoso.com", invite_at=0.0).finish(1.0, result_for("caller_cancelled"))
    buffer.add(first)
    with pytest.raises(ValueError, match="twice with different content"):
        buffer.add(other)
    cloud.ingest([first])
    with pytest.raises(ValueError, match="twice with different content"):
        cloud.ingest([other])


def test_start_upload_twice_is_a_programming_error():
    buffer = CdrBuffer(RoleSettings())
    buffer.add(sba_cdr(0))
    buffer.start_upload(0.0)
    with pytest.raises(RuntimeError, match="already in flight"):
        buffer.start_upload(1.0)


# --- the versioned cache ----------------------------------------------------------------------------
SBA = "sba1.contoso.com"


def user(upn: str, number: str | None, **kw) -> CachedUser:
    return CachedUser(upn=upn, number=number, sba_policy=(SBA,), voice_routing_policy="Seattle", **kw)


BRANCH = BranchConfig(
    users=(user("bob@contoso.com", "+12065550101"), user("carol@contoso.com", "+12065550102")),
    policies=(CachedPolicy("Seattle", ("Local",)),),
    routes=(CachedRoute("Seattle local", r"^\+1(206|425)\d{7}$", 1, ("sbc-sea.contoso.com",), ("Local",)),),
    gateways=(CachedGateway("sbc-sea.contoso.com", True),),
    dial_plans=(CachedDialPlan("Seattle", (CachedRule("7digit", r"^(\d{7})$", "+1206$1"),)),),
    emergency_dial_strings=("911", "933"),
)


def test_sync_versions_only_on_change_and_reports_what_changed():
    cache = SbaCache(SBA, RoleSettings())
    first = cache.apply_sync(BRANCH, 0.0)
    assert (first.version, first.changed, first.added) == (1, True, ("bob@contoso.com", "carol@contoso.com"))
    same = cache.apply_sync(BRANCH, 300.0)
    assert (same.version, same.changed) == (1, False) and cache.snapshot.synced_at == 300.0
    moved = replace(BRANCH, users=(user("bob@contoso.com", "+12065550199"), user("dave@contoso.com", "+12065550103")))
    outcome = cache.apply_sync(moved, 600.0)
    assert (outcome.version, outcome.added, outcome.removed, outcome.renumbered) == (
        2, ("dave@contoso.com",), ("carol@contoso.com",), ("bob@contoso.com",))


def test_user_added_after_last_sync_is_unknown_to_sba():
    cache = SbaCache(SBA, RoleSettings())
    cache.apply_sync(BRANCH, 0.0)
    # the tenant gains erin at t=400; the link is cut at t=500 and the 600 s sync fails
    cache.sync_started(600.0)
    cache.sync_failed(600.0, "connection reset")
    assert cache.user("erin@contoso.com") is None
    assert cache.user_by_number("+12065550104") is None
    assert cache.version == 1 and cache.last_failure == "connection reset"


def test_number_changed_after_sync_keeps_old_value():
    cache = SbaCache(SBA, RoleSettings())
    cache.apply_sync(BRANCH, 0.0)
    # bob's number changes in the tenant after the last sync; the SBA still routes the old one
    assert cache.user_by_number("+12065550101").upn == "bob@contoso.com"
    assert cache.user_by_number("+12065550199") is None
    assert cache.user("BOB@contoso.com").number == "+12065550101"


@pytest.mark.parametrize("number, expect", [("+12065550101", "bob@contoso.com"), ("12065550101", None),
                                            ("+12065550101;ext=1", None), ("tel:+12065550101", None)])
def test_reverse_number_lookup_is_an_exact_match(number, expect):
    cache = SbaCache(SBA, RoleSettings())
    cache.apply_sync(BRANCH, 0.0)
    found = cache.user_by_number(number)
    assert (found.upn if found else None) == expect


@pytest.mark.parametrize(
    "attempts, now, expect_due",
    [([], 0.0, True), ([0.0], 299.0, False), ([0.0], 300.0, True), ([0.0, 300.0], 599.0, False)],
)
def test_sync_every_interval(attempts, now, expect_due):
    cache = SbaCache(SBA, RoleSettings(sba_sync_interval_s=300))
    for t in attempts:
        cache.sync_started(t)
    assert cache.sync_due(now) is expect_due


def test_branch_config_round_trips_through_json():
    assert BranchConfig.from_dict(json.loads(json.dumps(BRANCH.to_dict()))) == BRANCH


def test_bad_branch_config_is_a_clear_error():
    with pytest.raises(ValueError, match="not a branch configuration"):
        BranchConfig.from_dict({"users": [{"number": "+1"}]})
