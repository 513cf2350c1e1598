"""Run time and `--time-scale K`: timers K times faster, every reported time in the scenario's units.

The scaling itself (RoleSettings.scaled, RunClock) is tested on its own; two real-network runs
show it end to end: `at:` honoured from the run's start (the OS monotonic clock counts from the
machine's boot), and a short outage at a high time scale whose times read as on the sim network.
"""

import asyncio
import io
import os
import random
import re
from pathlib import Path

import pytest
from rich.console import Console

from simulator import cli as drlab
from simulator.lab import Lab
from simulator.lab.spec import LabError
from simulator.lab.timescale import RunClock, link_delays, timed_settings
from simulator.roles.client_state import on_cadence
from simulator.roles.settings import DAY_S, RoleSettings, SettingsError
from simulator.scenario import cli
from simulator.scenario.loader import parse_scenario

REPO = Path(__file__).resolve().parents[2]
LAB, TENANT = REPO / "examples" / "labs" / "contoso.yaml", REPO / "examples" / "contoso.yaml"


@pytest.mark.parametrize(
    "name, at_scale_10",
    [
        ("sbc_options_interval_s", 6.0),      # OPTIONS interval
        ("demotion_window_s", 30.0),          # demotion
        ("client_detection_s", 3.0),          # client detection ...
        ("client_sba_probe_interval_s", 1.0),  # ... and retry
        ("sba_sync_interval_s", 30.0),        # SBA sync
        ("expired_token_grace_s", 0.7 * DAY_S),  # the 7-day token rule
        ("sba_contact_window_s", 0.1 * DAY_S),   # the 24 h rule
        ("sip_t1_s", 0.5), ("sip_t2_s", 4.0), ("sip_t4_s", 5.0),  # SIP transactions: round trips, not scaled
        ("proxy_datacenter_attempts", 3),     # not a duration
        ("max_sessions_alert_ratio", 0.9),
        ("demoted_gateways", "tried_last"),
    ],
)
def test_a_scaled_copy_divides_role_timers_and_keeps_transaction_timers(name, at_scale_10):
    assert getattr(RoleSettings().scaled(10), name) == pytest.approx(at_scale_10)


def test_scaling_keeps_the_overrides_and_scale_one_is_the_settings_themselves():
    settings = RoleSettings.from_overrides({"client_detection_s": 20})
    assert settings.scaled(4).client_detection_s == 5.0
    assert timed_settings(settings, 1) is settings


@pytest.mark.parametrize("scale", [0, -2, float("nan"), float("inf")])
def test_a_time_scale_that_is_not_a_finite_positive_number_is_refused(scale):
    with pytest.raises(SettingsError, match="time scale|duration > 0"):
        RoleSettings().scaled(scale)
    with pytest.raises(SettingsError, match="time scale"):
        RunClock(scale)


def test_the_run_clock_reads_zero_before_the_run_begins():
    assert RunClock(10)() == 0.0


@pytest.mark.sim
async def test_the_run_clock_counts_from_its_first_reading_and_multiplies_back():
    await asyncio.sleep(1000)  # the loop's clock is far from 0, as the OS monotonic clock is
    clock = RunClock(10)
    assert clock() == 0.0
    await asyncio.sleep(2.5)
    assert clock() == pytest.approx(25.0)
    assert clock.wall(30) == 3.0


def test_a_time_scale_on_the_sim_network_is_an_error(lab_certs):
    with pytest.raises(LabError, match="time scale is for the real network"):
        Lab.load(LAB, tenant=TENANT, network="sim", time_scale=10, certs_dir=lab_certs)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--time-scale", "10"], "--time-scale needs a positive number and the real network"),
        (["--network", "real", "--time-scale", "0"], "--time-scale needs a positive number"),
        (["--address-block", "127.0.0.0/24"], "--address-block needs the real network"),
    ],
)
def test_run_refuses_real_network_options_out_of_place(argv, message, capsys):
    assert drlab.main(["run", str(REPO / "scenarios" / "branch-outage.yaml"), *argv]) == 2
    assert message in capsys.readouterr().err


def run_real(tmp_path, certs, steps: str, **kw):
    text = f"lab: {LAB}\ntenant: {TENANT}\nsteps:\n{steps}"
    scenario = parse_scenario(text, str(tmp_path / "real.yaml"))
    result, records = cli.execute(scenario, seed=1, network="real", certs_dir=str(certs), **kw)
    assert result.passed, result.error or [(s.name, s.detail) for s in result.steps]
    return result, records


def started_at(records, step_kind: str) -> float:
    return next(r["t"] for r in records if r["event"] == "step.started" and r["kind"] == step_kind)


@pytest.mark.real
def test_at_counts_from_the_start_of_a_real_network_run(tmp_path, lab_certs):
    console = Console(file=io.StringIO(), width=200)
    # a block of our own choosing, different in each test run, so two runs at once do not collide
    rng = random.Random(os.getpid())
    a, b = rng.randrange(100, 250), rng.randrange(256)
    result, records = run_real(tmp_path, lab_certs, "  - expect: {client: carol@contoso.com, state: online}\n"
                                         "  - at: 6s\n    wait: 0s\n",
                               console=console, address_block=f"127.{a}.{b}.0/24")
    assert records[0]["t"] == 0.0
    assert 6.0 <= started_at(records, "wait") < 6.5
    # the address map: in the named block, in result.json and printed before the first step
    assert {entry["address"] for entry in result.addresses.values()} <= {f"127.{a}.{b}.{i}" for i in range(2, 255)}
    printed = console.file.getvalue()
    table_row = re.search(rf"^sbc-sea +sbc-sea\.contoso\.com +127\.{a}\.{b}\.\d+ +tls 5061  udp 5060$", printed, re.M)
    assert table_row and table_row.start() < printed.index("▶")


@pytest.mark.real
def test_a_short_outage_at_time_scale_25_reads_in_the_scenarios_own_units(tmp_path, lab_certs):
    result, records = run_real(tmp_path, lab_certs, (
        "  - expect: {client: [carol@contoso.com, dave@contoso.com], state: online}\n"
        "  - at: 60s\n    cut: wan-seattle\n"
        "  - wait: {until: {client: carol@contoso.com, state: appliance, registrar: sba1}, timeout: 2m}\n"
        "  - at: 180s\n    restore: wan-seattle\n"
        "  - wait: {until: {client: carol@contoso.com, state: online}, timeout: 2m}\n"), time_scale=25)
    assert 60.0 <= started_at(records, "cut") < 60 + 25 * 0.5  # `at:` in scenario seconds, late by < 0.5 s wall
    assert 180.0 <= started_at(records, "restore") < 180 + 25 * 0.5
    # a client declares the cloud gone client_detection_s (30 s) after its last good keepalive (every
    # 10 s), so 20-30 s after the cut, plus a probe timeout (5 s): as on sim, not 1/25 or 25 times it
    settings = RoleSettings()
    low = settings.client_detection_s - settings.client_keepalive_interval_s
    assert low <= result.metrics["detection_s"] <= settings.client_detection_s + settings.client_probe_timeout_s
    assert result.addresses["sbc-sea"]["sip"]["tls"].endswith(":5061")


@pytest.mark.parametrize(
    "impairment, at_scale_10",
    [
        ({"latency": 0.02, "jitter": 0.004, "loss": 0.05}, {"latency": 0.002, "jitter": 0.0004, "loss": 0.05}),
        ({"latency": None, "loss": 0.1}, {"latency": None, "loss": 0.1}),  # `impair:` leaves unnamed ones alone
    ],
)
def test_link_delays_shrink_with_the_time_scale_and_loss_does_not(impairment, at_scale_10):
    assert link_delays(impairment, 10) == pytest.approx(at_scale_10)


@pytest.mark.parametrize(
    "last, now, counted_at",
    [
        (100.0, 115.0, 115.0),    # on time (the virtual clock)
        (100.0, 115.004, 115.0),  # a loop that woke 4 ms late: the cadence holds
        (100.0, 140.0, 140.0),    # more than an interval late: from now
    ],
)
def test_a_periodic_client_check_keeps_its_cadence_when_the_loop_wakes_late(last, now, counted_at):
    assert on_cadence(last, 15.0, now) == counted_at
