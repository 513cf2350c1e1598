"""The Teams client's connectivity machine: observations over virtual time -> states, actions, reasons."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from simulator.roles import client_state as cs
from simulator.roles.settings import DAY_S, RoleSettings
from tests.roles.client_world import World, start

SBA1, SBA2 = "sba1.contoso.com", "sba2.contoso.com"
DEFAULTS = RoleSettings()


def blocked_reasons(run) -> list[str]:
    return [o.reason for _, o in run.of(cs.Blocked)]


@pytest.mark.parametrize(
    "cut_at, detection_s, expect_offline_at",
    [
        # keepalives every 10 s answered up to the cut; offline detection_s after the last answered one
        (100.0, 30.0, 120.0),
        (105.0, 30.0, 130.0),
        (100.0, 20.0, 110.0),
        (100.0, 60.0, 150.0),
    ],
)
def test_client_goes_offline_detection_time_after_last_good_keepalive(cut_at, detection_s, expect_offline_at):
    run = start(World(cloud_down=[(cut_at, 10_000)]), settings=RoleSettings(client_detection_s=detection_s))
    run.until(cut_at + detection_s + 20)
    assert run.states()[0] == (expect_offline_at, "offline")
    changed = run.of(cs.StateChanged)[0][1]
    assert changed.reason == f"no successful cloud keepalive for {detection_s:g}s"


def test_client_enters_appliance_mode_at_first_reachable_sba_of_its_policy():
    world = World(cloud_down=[(100, 10_000)], sba_down={SBA1: [(50, 10_000)]})
    run = start(world, sba_policy=(SBA1, SBA2))
    run.until(200)
    assert run.states() == [(120.0, "offline"), (120.0, "appliance_mode")]
    assert run.client.sba == SBA2
    assert [o for _, o in run.outputs if isinstance(o, (cs.ProbeSba, cs.RegisterAtSba))] == [
        cs.ProbeSba(SBA1), cs.ProbeSba(SBA2), cs.RegisterAtSba(SBA2)]


H = 3600.0


@pytest.mark.parametrize(
    "policy, authenticated_at, expires_at, contacts, now, grace_from, expect_sbas, expect_reason",
    [
        ((), 0, H, {}, 100, "token_expiry", [], "no SBA policy"),
        ((SBA1,), None, None, {SBA1: 50}, 100, "token_expiry", [], "restarted during the outage"),
        ((SBA1, SBA2), 0, H, {SBA1: 50, SBA2: 60}, 100, "token_expiry", [SBA1, SBA2], ""),
        ((SBA1, SBA2), 0, H, {SBA2: 60}, 100, "token_expiry", [SBA2], ""),
        # 7 days from the token's expiry (later [S26] revision)
        ((SBA1,), 0, H, {SBA1: 7 * DAY_S}, 7 * DAY_S + H, "token_expiry", [SBA1], ""),
        ((SBA1,), 0, H, {SBA1: 7 * DAY_S}, 7 * DAY_S + H + 1, "token_expiry", [], "expired-token grace"),
        # 7 days from the last sign-in (2024-08 [S26] revision): an hour less here
        ((SBA1,), 0, H, {SBA1: 7 * DAY_S}, 7 * DAY_S, "last_authentication", [SBA1], ""),
        ((SBA1,), 0, H, {SBA1: 7 * DAY_S}, 7 * DAY_S + 1, "last_authentication", [], "expired-token grace"),
        # the 24-hour rule, per SBA
        ((SBA1,), 0, H, {SBA1: 100}, 100 + DAY_S, "token_expiry", [SBA1], ""),
        ((SBA1,), 0, H, {SBA1: 100}, 101 + DAY_S, "token_expiry", [], "contacted within 86400s"),
        ((SBA1,), 0, H, {}, 100, "token_expiry", [], "contacted within 86400s"),
    ],
)
def test_appliance_mode_candidates(policy, authenticated_at, expires_at, contacts, now, grace_from, expect_sbas,
                                   expect_reason):
    sbas, reason = cs.appliance_mode_candidates(
        sba_policy=policy, token_authenticated_at=authenticated_at, token_expires_at=expires_at,
        last_sba_contact=contacts, now=now, settings=RoleSettings(token_grace_from=grace_from))
    assert sbas == expect_sbas
    assert expect_reason in reason and bool(reason) == bool(expect_reason)


@pytest.mark.parametrize(
    "grace_from, cut_at, expect_state",
    [
        # last keepalive answered at 7 d - 1 h; offline (and looking for an SBA) at 7 d + 1 s:
        # within 7 d of the token's expiry (1 h), beyond 7 d of the sign-in (0)
        ("token_expiry", 7 * DAY_S - H / 2, "appliance_mode"),
        ("last_authentication", 7 * DAY_S - H / 2, "offline"),
    ],
)
def test_token_never_renewed_for_a_week_decides_appliance_mode_by_the_grace_reading(grace_from, cut_at, expect_state):
    # the token service is unreachable all week (keepalives still work), so the token of t=0 ages
    world = World(cloud_down=[(cut_at, cut_at + DAY_S)], token_service_down=True)
    settings = RoleSettings(token_grace_from=grace_from, client_keepalive_interval_s=H,
                            client_detection_s=H + 1, client_sba_checkin_interval_s=H)
    run = start(world, settings=settings)
    run.until(cut_at + 3 * H)
    assert str(run.client.state) == expect_state
    if expect_state == "offline":
        assert any("expired-token grace" in r for r in blocked_reasons(run))


def test_client_restarted_during_outage_cannot_enter_appliance_mode():
    run = start(World(cloud_down=[(100, 1000)]))
    run.until(125)  # cut noticed at 120, already in appliance mode
    assert run.client.state is cs.ClientState.APPLIANCE
    run.observe(130, cs.Restarted())
    run.until(900)
    assert run.states() == [(120.0, "offline"), (120.0, "appliance_mode"), (130.0, "offline")]
    assert run.of(cs.UnregisterFromSba)[0][1].sba == SBA1
    assert not [o for t, o in run.outputs if t > 130 and isinstance(o, (cs.ProbeSba, cs.RegisterAtSba))]
    assert "restarted during the outage" in blocked_reasons(run)[-1]
    run.until(1100)  # the cloud comes back: signs in again
    assert run.states()[-1] == (1000.0, "online")  # cloud probes every 15 s since 130
    assert [o for t, o in run.outputs if t == 1000.0 and isinstance(o, (cs.RenewToken, cs.RegisterToCloud))] == [
        cs.RenewToken(), cs.RegisterToCloud()]
    assert run.client.token_authenticated_at == 1000.0  # a new token: appliance mode possible again


def test_client_restarted_while_online_signs_in_again_and_keeps_sba_rights():
    run = start(World(cloud_down=[(500, 10_000)]))
    run.observe(50, cs.Restarted())
    assert [o for t, o in run.outputs if t == 50 and not isinstance(o, cs.SendKeepalive)] == [
        cs.RenewToken(), cs.RegisterToCloud()]
    run.observe(51, cs.TokenRenewed())  # the sign-in completed
    run.until(600)
    assert run.client.state is cs.ClientState.APPLIANCE


def test_client_not_in_contact_with_sba_within_24h_cannot_enter_appliance_mode():
    # the SBA was down (LAN side) for more than a day before the cloud outage
    world = World(cloud_down=[(DAY_S + 7200, 10 * DAY_S)], sba_down={SBA1: [(1.0, 10 * DAY_S)]})
    settings = RoleSettings(client_sba_checkin_interval_s=3600)
    run = start(world, settings=settings)
    run.until(DAY_S + 7500)
    assert run.client.state is cs.ClientState.OFFLINE
    assert any("contacted within 86400s" in r for r in blocked_reasons(run))


def test_client_waits_for_outgoing_call_to_end_before_returning_to_cloud():
    run = start(World(cloud_down=[(100, 400)]))
    run.observe(200, cs.CallStarted("out-1", outgoing=True))
    run.observe(210, cs.CallStarted("in-1", outgoing=False))
    run.until(500)
    assert run.client.state is cs.ClientState.APPLIANCE  # cloud back at 400, outgoing call still up
    deferred = run.of(cs.ReturnDeferred)
    assert len(deferred) == 1 and "out-1" in deferred[0][1].reason
    run.observe(520, cs.CallEnded("out-1"))
    assert run.states()[-1] == (520, "online")
    assert run.client.calls == {"in-1": False}  # the incoming call was not dropped by the switch
    assert [o for t, o in run.outputs if t == 520][1:] == [
        cs.UnregisterFromSba(SBA1, "last outgoing call ended and the cloud is reachable"), cs.RegisterToCloud()]


def test_client_returns_at_first_cloud_probe_when_no_outgoing_call():
    run = start(World(cloud_down=[(100, 400)]))
    run.until(500)
    # offline and appliance at 120; cloud probes every 15 s from 120: 390 fails, 405 answers
    assert run.states() == [(120.0, "offline"), (120.0, "appliance_mode"), (405.0, "online")]


def test_outgoing_call_ending_while_cloud_still_down_keeps_appliance_mode():
    run = start(World(cloud_down=[(100, 1000)]))
    run.observe(200, cs.CallStarted("out-1", outgoing=True))
    run.observe(300, cs.CallEnded("out-1"))
    assert run.client.state is cs.ClientState.APPLIANCE


def test_calls_in_progress_survive_every_switch():
    run = start(World(cloud_down=[(100, 400)]))
    run.observe(50, cs.CallStarted("cloud-in", outgoing=False))
    run.until(500)
    assert run.client.calls == {"cloud-in": False}
    assert [s for _, s in run.states()] == ["offline", "appliance_mode", "online"]


@pytest.mark.parametrize(
    "refusal, expect_state",
    [
        (None, "appliance_mode"),
        ("token beyond the expired-token grace", "offline"),
        ("client not seen within 86400s", "offline"),
    ],
)
def test_sba_refusal_keeps_client_offline_with_the_sba_reason(refusal, expect_state):
    world = World(cloud_down=[(100, 10_000)], sba_refuses=lambda sba, t: refusal)
    run = start(world)
    run.until(300)
    assert str(run.client.state) == expect_state
    if refusal:
        assert f"SBA {SBA1} refused: {refusal}" in blocked_reasons(run)


def test_sba_lost_in_appliance_mode_moves_to_the_next_sba():
    world = World(cloud_down=[(100, 10_000)], sba_down={SBA1: [(200, 10_000)]})
    run = start(world, sba_policy=(SBA1, SBA2))
    run.until(800)
    # registration at SBA1 (expiry 600) is refreshed at 420: no answer, 5 s timeout -> offline -> SBA2
    assert run.states() == [(120.0, "offline"), (120.0, "appliance_mode"),
                            (425.0, "offline"), (425.0, "appliance_mode")]
    assert run.client.sba == SBA2


def test_unreachable_sbas_are_retried_at_the_probe_interval():
    world = World(cloud_down=[(100, 10_000)], sba_down={SBA1: [(100, 150)]})
    run = start(world)
    run.until(200)
    probes = [t for t, o in run.outputs if isinstance(o, cs.ProbeSba)]
    assert probes == [120.0, 130.0, 140.0, 150.0]
    assert run.states()[-1] == (150.0, "appliance_mode")


def test_online_client_checks_in_at_its_sbas_and_renews_its_token():
    settings = RoleSettings(client_token_lifetime_s=1000, client_token_renew_before_s=100,
                            client_sba_checkin_interval_s=600)
    run = start(World(), sba_policy=(SBA1, SBA2), settings=settings)
    run.until(1300)
    assert [t for t, o in run.of(cs.CheckInAtSba)] == [0.0, 0.0, 600.0, 600.0, 1200.0, 1200.0]
    assert [t for t, _ in run.of(cs.RenewToken)] == [900.0]
    assert run.client.token_expires_at == 1900.0
    assert run.client.last_sba_contact == {SBA1: 1200.0, SBA2: 1200.0}


def test_next_deadline_is_never_in_the_past_after_handling_it():
    run = start(World(cloud_down=[(100, 400)], sba_down={SBA1: [(100, 200)]}))
    t = 0.0
    for _ in range(500):
        deadline = run.client.next_deadline()
        assert deadline is not None and deadline >= t
        t = deadline
        run.until(t)


def test_table_rows_name_real_states_and_observations():
    for (state, observation), rows in cs.TRANSITIONS.items():
        assert isinstance(state, cs.ClientState) and issubclass(observation, cs.Observation)
        for _guard, new_state, reason in rows:
            assert new_state is not state and reason


def test_handle_refuses_what_is_not_an_observation():
    client = cs.ClientConnectivity("a@contoso.com", (SBA1,), DEFAULTS, now=0.0)
    with pytest.raises(TypeError, match="not a client observation"):
        client.handle("keepalive ok", 1.0)  # type: ignore[arg-type]


# --- properties over random observation sequences ----------------------------------------------------

OBSERVATIONS = st.one_of(
    st.just(cs.KeepaliveOk()), st.just(cs.KeepaliveFailed()), st.just(cs.Restarted()), st.just(cs.TokenRenewed()),
    st.sampled_from([cs.SbaProbeOk(SBA1), cs.SbaProbeFailed(SBA1), cs.SbaRegistered(SBA1),
                     cs.SbaRegistrationRefused(SBA1, "no"), cs.SbaProbeOk(SBA2), cs.SbaRegistered(SBA2)]),
    st.builds(cs.CallStarted, st.sampled_from(["c1", "c2"]), st.booleans()),
    st.builds(cs.CallEnded, st.sampled_from(["c1", "c2"])),
)


@hsettings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 120), st.one_of(st.none(), OBSERVATIONS)), max_size=40))
def test_machine_invariants_hold_for_any_observation_sequence(steps):
    client = cs.ClientConnectivity("a@contoso.com", (SBA1, SBA2), DEFAULTS, now=0.0)
    t = 0.0
    for dt, observation in steps:
        t += dt
        before = client.state
        outgoing_before = bool(client.outgoing_calls())
        outputs = client.handle_timer(t) if observation is None else client.handle(observation, t)
        deadline = client.next_deadline()
        assert deadline is not None  # the machine always wants to be woken again
        for out in outputs:
            if isinstance(out, cs.StateChanged):
                assert out.reason
                if out.old is cs.ClientState.APPLIANCE and out.new is cs.ClientState.ONLINE:
                    assert not outgoing_before or isinstance(observation, cs.CallEnded)
                    assert not client.outgoing_calls()
        if client.state is cs.ClientState.APPLIANCE:
            assert client.sba in (SBA1, SBA2) and client.token_expires_at is not None
            assert before is not cs.ClientState.ONLINE  # never straight from online: detection first


@pytest.mark.parametrize("cut_at", [90.0, 90.001, 95.0, 99.999])
@pytest.mark.parametrize("detection_s", [20.0, 30.0])
def test_appliance_mode_within_the_documented_bound_of_the_cut(cut_at, detection_s):
    settings = RoleSettings(client_detection_s=detection_s)
    run = start(World(cloud_down=[(cut_at, 1000.0)]), settings=settings)
    run.until(cut_at + settings.appliance_mode_bound_s())
    assert run.client.state is cs.ClientState.APPLIANCE
    appliance_at = [t for t, s in run.states() if s == "appliance_mode"][0]
    assert appliance_at - cut_at <= settings.appliance_mode_bound_s()
    run.until(1000.0 + settings.cloud_return_bound_s())
    assert run.client.state is cs.ClientState.ONLINE


def test_registration_answered_after_cloud_returned_is_taken_back():
    client = cs.ClientConnectivity("a@contoso.com", (SBA1,), DEFAULTS, now=0.0)
    client.handle_timer(0.0)
    client.handle(cs.SbaProbeOk(SBA1), 0.0)  # check-in
    client.handle_timer(30.0)  # detection: offline, probes SBA1
    assert client.handle(cs.SbaProbeOk(SBA1), 30.1) == [cs.RegisterAtSba(SBA1)]
    client.handle(cs.KeepaliveOk(), 30.2)  # cloud back before the REGISTER is answered
    assert client.state is cs.ClientState.ONLINE
    assert client.handle(cs.SbaRegistered(SBA1), 30.3) == [
        cs.UnregisterFromSba(SBA1, "registration answered after returning online")]
    assert client.state is cs.ClientState.ONLINE
