"""Call quality from what a stream measured: a MOS from the ITU-T G.107 E-model, and the verdict
"poor" by the audio stream classifier of Microsoft's Call Quality Dashboard [S30].

The E-model, simplified for a G.711 call (ITU-T G.107 (06/2015) §7 and Annex B):

    R = (Ro − Is) − Id − Ie,eff + A   with Ro − Is = 93.2 and A = 0 (the G.107 default values)

- Id is the pure-delay term Idd (G.107 §7.3, formula 7-28) of the mouth-to-ear delay Ta; the echo
  terms Idte and Idle are taken as 0 (perfect echo control, the G.107 default TELR = 65 dB).
- Ta = one-way network delay (half the RTCP round trip, RFC 3550 §6.4.1) + the jitter buffer
  (2 × the interarrival jitter) + one packetization interval. This is an assumption of drlab,
  not part of G.107, which takes Ta as given.
- Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl) (G.107 §7.4, formula 7-29) with G.711's
  Ie = 0 and Bpl = 25.1 (G.711 with its Appendix I packet-loss concealment, ITU-T G.113
  Appendix I), random loss (BurstR = 1), and Ppl the stream's loss percentage.
- MOS from R by G.107 Annex B (formula B-4): 1 below R = 0, 4.5 above R = 100, else
  1 + 0.035 R + R (R − 60)(100 − R) · 7·10⁻⁶.

The CQD audio classifier [S30]: a stream is poor when any of its averages passes a threshold —
round trip over 500 ms, packet loss rate over 10 %, jitter over 30 ms — and it carried more than
500 packets; a stream with fewer packets is unclassified.

One-way audio: RFC 3550's loss counts only up to the highest sequence number received, so a
direction that went silent mid-call shows no loss. Each stream therefore also reports `silent_s`,
how long it had received nothing when it stopped; a call's audio is `one-way` when one direction
received nothing, or nothing for its last ONE_WAY_SILENCE_S, while the other flowed to the end
(`audio_flow`; the threshold is drlab's, docs/ASSUMPTIONS.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

R_DEFAULT = 93.2  # Ro − Is with every G.107 parameter at its default value (G.107 Table 3)
G711_IE = 0.0  # ITU-T G.113 Appendix I, Table I.1
G711_BPL = 25.1  # ITU-T G.113 Appendix I, Table I.3: G.711 with Appendix I concealment

POOR_RTT_MS = 500.0  # [S30]
POOR_LOSS_RATE = 0.10  # [S30]
POOR_JITTER_MS = 30.0  # [S30]
MIN_CLASSIFIED_PACKETS = 500  # [S30]: "packet utilization > 500"
#: drlab: a direction silent this long when its stream stopped no longer carried the call's audio
#: (a hangup's own gap is a few round trips; a media inactivity timeout is 30 s)
ONE_WAY_SILENCE_S = 5.0


def delay_impairment(ta_ms: float) -> float:
    """Idd (G.107 formula 7-28): 0 up to 100 ms of mouth-to-ear delay, then rising."""
    if ta_ms <= 100.0:
        return 0.0
    x = math.log10(ta_ms / 100.0) / math.log10(2.0)
    return 25.0 * ((1 + x**6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2)


def equipment_impairment(loss_percent: float, *, ie: float = G711_IE, bpl: float = G711_BPL,
                         burst_ratio: float = 1.0) -> float:
    """Ie,eff (G.107 formula 7-29) for a packet loss percentage."""
    return ie + (95.0 - ie) * loss_percent / (loss_percent / burst_ratio + bpl)


def r_factor(mouth_to_ear_ms: float, loss_percent: float) -> float:
    return R_DEFAULT - delay_impairment(mouth_to_ear_ms) - equipment_impairment(loss_percent)


def mos_from_r(r: float) -> float:
    """G.107 Annex B, formula B-4: the estimated conversational MOS for a rating R."""
    if r < 0:
        return 1.0
    if r > 100:
        return 4.5
    return 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6


def mouth_to_ear_ms(rtt_ms: float | None, jitter_ms: float, ptime_ms: float) -> float:
    """drlab's Ta: half the round trip, a jitter buffer of twice the jitter, one packet's audio."""
    return (rtt_ms or 0.0) / 2 + 2 * jitter_ms + ptime_ms


@dataclass(frozen=True)
class StreamQuality:
    """The quality of one direction of a call, as its receiver measured it."""

    packets_expected: int
    packets_received: int
    loss: float  # fraction 0..1 of the packets expected that did not arrive
    jitter_ms: float
    rtt_ms: float | None  # from RTCP; None before the first SR/RR round trip
    r: float
    mos: float
    poor: bool | None  # None: unclassified (no more than 500 packets, [S30])
    reasons: tuple[str, ...] = ()
    silent_s: float = 0.0  # how long nothing had arrived when the stream stopped (the whole life if nothing did)

    def as_fields(self) -> dict[str, Any]:
        """Rounded figures for events and result.json."""
        fields = asdict(self)
        fields.update(loss=round(self.loss, 4), jitter_ms=round(self.jitter_ms, 2), r=round(self.r, 1),
                      mos=round(self.mos, 2), rtt_ms=None if self.rtt_ms is None else round(self.rtt_ms, 1),
                      reasons=list(self.reasons), silent_s=round(self.silent_s, 2))
        return fields


def classify(packets: int, loss: float, jitter_ms: float, rtt_ms: float | None) -> tuple[bool | None, tuple[str, ...]]:
    """CQD's audio rule [S30]: (poor, why) — poor is None for a stream it leaves unclassified."""
    reasons = []
    if rtt_ms is not None and rtt_ms > POOR_RTT_MS:
        reasons.append(f"round trip {rtt_ms:.0f} ms > {POOR_RTT_MS:.0f} ms")
    if loss > POOR_LOSS_RATE:
        reasons.append(f"packet loss {loss:.1%} > {POOR_LOSS_RATE:.0%}")
    if jitter_ms > POOR_JITTER_MS:
        reasons.append(f"jitter {jitter_ms:.1f} ms > {POOR_JITTER_MS:.0f} ms")
    if packets <= MIN_CLASSIFIED_PACKETS:
        return None, tuple(reasons)
    return bool(reasons), tuple(reasons)


def stream_quality(expected: int, received: int, jitter_ms: float, rtt_ms: float | None,
                   ptime_ms: float = 20.0, silent_s: float = 0.0) -> StreamQuality:
    """Loss, E-model MOS and the CQD verdict of one received stream."""
    if received == 0:
        # nothing arrived: no figures to rate, and CQD leaves such a stream unclassified [S30]
        return StreamQuality(expected, 0, 1.0, 0.0, rtt_ms, 0.0, 1.0, None, ("no media received",), silent_s)
    loss = max(0.0, (expected - received) / expected) if expected else 0.0
    r = r_factor(mouth_to_ear_ms(rtt_ms, jitter_ms, ptime_ms), 100 * loss)
    poor, reasons = classify(max(expected, received), loss, jitter_ms, rtt_ms)
    return StreamQuality(expected, received, loss, jitter_ms, rtt_ms, r, mos_from_r(r), poor, reasons, silent_s)


def flowed_to_the_end(figures: Mapping[str, Any]) -> bool:
    """One direction's `media.quality` figures: it received media, and until (almost) its end."""
    return bool(figures.get("packets_received")) and (figures.get("silent_s") or 0.0) < ONE_WAY_SILENCE_S


def audio_flow(ends: Sequence[Mapping[str, Any]]) -> str | None:
    """"two-way", "one-way" or "none" from the figures of a call's two ends; None without both."""
    if len(ends) != 2:
        return None
    return ("none", "one-way", "two-way")[sum(flowed_to_the_end(q) for q in ends)]
