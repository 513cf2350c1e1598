"""The E-model (ITU-T G.107) against its published values, CQD's poor-stream rule [S30], and one-way audio."""

from __future__ import annotations

import pytest

from simulator.media.quality import (
    audio_flow,
    classify,
    delay_impairment,
    equipment_impairment,
    mos_from_r,
    r_factor,
    stream_quality,
)


@pytest.mark.parametrize(("r", "mos"), [
    # G.107 Table B.1: the lower limits of the user satisfaction categories and their MOS
    (90, 4.34), (80, 4.03), (70, 3.60), (60, 3.10), (50, 2.58),
    (93.2, 4.41),  # every parameter at its default value (G.107 §7.7)
    (-5, 1.0), (0, 1.0), (100, 4.5), (120, 4.5),
])
def test_mos_from_r_follows_g107_annex_b(r: float, mos: float) -> None:
    assert mos_from_r(r) == pytest.approx(mos, abs=0.01)  # the table rounds to 2 places


def test_a_clean_g711_call_rates_the_default_r() -> None:
    assert r_factor(mouth_to_ear_ms=50, loss_percent=0) == pytest.approx(93.2)


@pytest.mark.parametrize(("ta", "idd"), [(0, 0.0), (100, 0.0), (150, 0.16), (200, 3.04), (400, 24.07)])
def test_delay_impairment_is_zero_to_100_ms_then_rises(ta: float, idd: float) -> None:
    assert delay_impairment(ta) == pytest.approx(idd, abs=0.01)


@pytest.mark.parametrize(("loss", "ie_eff"), [
    (0, 0.0),
    (25.1, 47.5),   # at Ppl = Bpl the loss costs half of 95 − Ie
    (100, 95 * 100 / 125.1),
])
def test_loss_impairment_for_g711_with_concealment(loss: float, ie_eff: float) -> None:
    assert equipment_impairment(loss) == pytest.approx(ie_eff, abs=0.01)


@pytest.mark.parametrize(("packets", "loss", "jitter", "rtt", "poor"), [
    (1000, 0.0, 1.0, 40.0, False),
    (1000, 0.10, 30.0, 500.0, False),   # at the thresholds: not over them
    (1000, 0.11, 0.0, None, True),      # loss rate > 0.1
    (1000, 0.0, 31.0, None, True),      # jitter > 30 ms
    (1000, 0.0, 0.0, 501.0, True),      # round trip > 500 ms
    (500, 0.5, 0.0, None, None),        # 500 packets or fewer: unclassified
])
def test_cqd_poor_stream_thresholds(packets: int, loss: float, jitter: float, rtt: float | None,
                                    poor: bool | None) -> None:
    assert classify(packets, loss, jitter, rtt)[0] is poor


def test_stream_quality_from_received_figures() -> None:
    clean = stream_quality(expected=1000, received=1000, jitter_ms=0.5, rtt_ms=20.0)
    assert (clean.loss, clean.poor, round(clean.mos, 2)) == (0.0, False, 4.41)
    bad = stream_quality(expected=1000, received=880, jitter_ms=12.0, rtt_ms=400.0)
    assert bad.loss == pytest.approx(0.12) and bad.poor is True and bad.mos < 3.1
    assert bad.reasons == ("packet loss 12.0% > 10%",)
    silent = stream_quality(expected=0, received=0, jitter_ms=0.0, rtt_ms=None)
    assert (silent.poor, silent.mos, silent.reasons) == (None, 1.0, ("no media received",))


def ends(*directions: tuple[int, float]) -> list[dict]:
    return [{"node": f"n{i}", "packets_received": received, "silent_s": silent}
            for i, (received, silent) in enumerate(directions)]


@pytest.mark.parametrize(("figures", "flow"), [
    (ends((1000, 0.02), (1000, 0.05)), "two-way"),
    (ends((1000, 0.02), (0, 20.0)), "one-way"),  # one side heard nothing at all
    (ends((1000, 0.02), (900, 30.0)), "one-way"),  # one side went deaf mid-call: RFC 3550 loss shows nothing
    (ends((0, 20.0), (0, 20.0)), "none"),
    (ends((400, 4.9), (1000, 0.0)), "two-way"),  # a gap under ONE_WAY_SILENCE_S is no one-way audio
    (ends((1000, 0.02)), None),  # one end's figures cannot tell
], ids=["both", "one side nothing", "one side deaf at the end", "neither", "short gap", "one end"])
def test_a_calls_audio_flows_both_ways_one_way_or_not_at_all_by_what_each_end_heard_to_the_end(figures, flow):
    assert audio_flow(figures) == flow
