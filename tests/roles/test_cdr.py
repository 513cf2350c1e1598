"""CDR records and Microsoft-style result codes [S11]."""

from __future__ import annotations

import pytest

from simulator.roles.cdr import (
    RESULTS,
    CallPath,
    Cdr,
    CdrDraft,
    Direction,
    EndReason,
    result_for,
    result_from_client,
    result_from_gateway,
)


def draft(**kw) -> CdrDraft:
    base = dict(call_id="abc@sbc1", caller="+14255550100", callee="+12065550123", direction=Direction.OUTBOUND,
                path=CallPath.CLOUD, node="sip.pstnhub.microsoft.com", invite_at=10.0, gateway="sbc1.contoso.com",
                user="alice@contoso.com")
    return CdrDraft(**{**base, **kw})


@pytest.mark.parametrize(
    "condition, sip_code, ms_code",
    [
        ("user_not_found", 404, 511404),  # [S11]
        ("failover_timer_expired", 408, 500001),
        ("sbc_did_not_ack", 408, 1106),
        ("client_establishment_timeout", 408, 0),
        ("replacement_call_not_found", 404, 10202),
        ("sbc_required_unsupported_extension", 420, 540420),
    ],
)
def test_documented_result_codes(condition, sip_code, ms_code):
    result = result_for(condition)
    assert (result.sip_code, result.ms_code, result.documented) == (sip_code, ms_code, True)


def test_undocumented_conditions_use_the_599_range_and_say_so():
    for name, result in RESULTS.items():
        assert result.documented == (result.ms_code // 1000 != 599), name


@pytest.mark.parametrize("sip_code, ms_code", [(486, 560486), (403, 560403), (503, 560503), (603, 560603)])
def test_gateway_generated_final_is_560_plus_sip_code(sip_code, ms_code):
    result = result_from_gateway(sip_code, "x")
    assert result.ms_code == ms_code and result.generated_by_gateway
    assert not result_for("failover_timer_expired").generated_by_gateway


@pytest.mark.parametrize("bad", [200, 180, 700])
def test_gateway_result_must_be_a_failure(bad):
    with pytest.raises(ValueError, match="3xx-6xx"):
        result_from_gateway(bad, "x")


def test_unknown_condition_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown call result condition 'nope'"):
        result_for("nope")


def test_answered_call_cdr_has_duration_and_graph_shape():
    d = draft()
    d.answered(12.0)
    d.answered(13.0)  # a retransmitted 200 OK does not move the answer time
    cdr = d.finish(72.4)
    assert cdr.cdr_id == "sip.pstnhub.microsoft.com:abc@sbc1"
    assert (cdr.successful, cdr.duration_s, cdr.result.sip_code) == (True, 60, 200)
    row = cdr.to_graph()
    assert row["finalSipCode"] == 0 and row["callEndSubReason"] == 540000 and row["finalSipCodePhrase"] == "BYE"
    assert row["callType"] == "ByotOut" and row["endDateTime"] == 72.4 and row["failureDateTime"] is None
    assert row["trunkFullyQualifiedDomainName"] == "sbc1.contoso.com"


def test_failed_call_cdr_keeps_the_final_code():
    cdr = draft(direction=Direction.INBOUND).finish(15.0, result_for("user_not_found"))
    row = cdr.to_graph()
    assert (row["successfulCall"], row["finalSipCode"], row["callEndSubReason"]) == (False, 404, 511404)
    assert row["failureDateTime"] == 15.0 and row["callType"] == "ByotIn" and row["duration"] == 0


def test_unanswered_call_needs_an_explicit_result():
    with pytest.raises(ValueError, match="never answered"):
        draft().finish(20.0)


def test_cdr_round_trips_through_a_dict():
    cdr = draft(path=CallPath.SBA, direction=Direction.INTERNAL).finish(11.0, result_for("callee_not_registered"))
    again = Cdr.from_dict(cdr.to_dict())
    assert again == cdr and again.path is CallPath.SBA


@pytest.mark.parametrize(
    "mutation, message",
    [
        ({"end_at": 5.0}, "before its INVITE"),
        ({"answer_at": 50.0}, "out of order"),
        ({"cdr_id": ""}, "non-empty cdr_id"),
    ],
)
def test_inconsistent_cdr_is_refused(mutation, message):
    d = draft().finish(20.0, result_for("caller_cancelled")).to_dict()
    with pytest.raises(ValueError, match=message):
        Cdr.from_dict({**d, **mutation})


def test_from_dict_refuses_what_is_not_a_cdr():
    with pytest.raises(ValueError, match="not a CDR"):
        Cdr.from_dict({"call_id": "x"})


@pytest.mark.parametrize("sip_code, ms_code", [(486, 598486), (603, 598603), (480, 598480)])
def test_client_generated_final_is_598_plus_sip_code_and_undocumented(sip_code, ms_code):
    result = result_from_client(sip_code, "x")
    assert (result.ms_code, result.documented, result.generated_by_gateway) == (ms_code, False, False)
    with pytest.raises(ValueError, match="3xx-6xx"):
        result_from_client(200, "OK")


def _answered(at: float = 12.0) -> CdrDraft:
    d = draft()
    d.answered(at)
    return d


@pytest.mark.parametrize(("finish", "end_reason", "ended_by"), [
    (lambda: _answered().finish(20.0), "normal", None),
    (lambda: _answered().finish(20.0, end_reason=EndReason.MEDIA_TIMEOUT, ended_by="self"), "media_timeout", "self"),
    (lambda: draft().finish(20.0, result_for("caller_cancelled")), "cancelled", None),
    (lambda: draft().finish(20.0, result_from_gateway(486, "Busy Here"), ended_by="callee"), "refused", "callee"),
], ids=["hung up", "media timeout", "cancelled", "refused"])
def test_a_record_says_why_the_call_ended_and_who_ended_it(finish, end_reason, ended_by):
    cdr = finish()
    assert (cdr.end_reason, cdr.ended_by) == (end_reason, ended_by)
    assert Cdr.from_dict(cdr.to_dict()) == cdr
