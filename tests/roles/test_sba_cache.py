"""The SBA's own decisions: token rules, CDR buffering; and its cache of the branch (reference §3)."""

from __future__ import annotations

import pytest

from simulator.roles.cdr import CallPath, CdrDraft, CdrStore, Direction, result_for
from simulator.roles.sba_cache import CdrBuffer, ClientAdmission
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
