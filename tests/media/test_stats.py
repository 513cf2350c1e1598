"""Receiver statistics as RFC 3550 A.1, A.3 and A.8 compute them, against hand-computed tables."""

from __future__ import annotations

import pytest

from simulator.media.stats import BlockFigures, ReceiverStats

PTIME_TS = 160  # 20 ms of G.711 at 8000 Hz


def feed(stats: ReceiverStats, sequences: list[int], *, arrivals: list[float] | None = None) -> None:
    for i, seq in enumerate(sequences):
        arrival = arrivals[i] if arrivals else 0.02 * seq
        stats.received(seq % 65536, (seq * PTIME_TS) % (1 << 32), arrival)


@pytest.mark.parametrize(("sequences", "expected", "lost", "fraction", "highest"), [
    ([0, 1, 2, 3], 4, 0, 0, 3),                       # nothing lost
    ([0, 1, 2, 4, 5, 8, 9], 10, 3, 76, 9),            # 3 of 10: 3 * 256 // 10 = 76
    ([0, 2, 1, 3], 4, 0, 0, 3),                       # reordered, none lost
    ([0, 1, 1, 2], 3, -1, 0, 2),                      # a duplicate counts as received: lost -1
    ([65534, 65535, 65536, 65537], 4, 0, 0, 65537),   # the sequence number wraps: one cycle
    ([0, 5000, 5001, 5002], 2, 0, 0, 5002),           # a jump > MAX_DROPOUT, confirmed by 5001: restart there
])
def test_loss_and_extended_sequence(sequences: list[int], expected: int, lost: int, fraction: int,
                                    highest: int) -> None:
    stats = ReceiverStats(8000, probation=0)
    feed(stats, sequences)
    assert (stats.expected, stats.lost) == (expected, lost)
    block = stats.report_block()
    assert (block.fraction_lost, block.cumulative_lost, block.highest_sequence) == (fraction, lost, highest)


def test_fraction_lost_is_per_interval_and_cumulative_loss_is_not() -> None:
    stats = ReceiverStats(8000, probation=0)
    feed(stats, [0, 1, 3])           # 1 of 4 lost
    assert stats.report_block() == BlockFigures(64, 1, 3, 0)
    feed(stats, [4, 5, 6, 7])        # none lost in this interval
    assert stats.report_block() == BlockFigures(0, 1, 7, 0)
    feed(stats, [10, 11])            # 2 of 4 lost in this one
    assert stats.report_block().fraction_lost == 128


def test_a_new_source_counts_from_its_second_packet_in_sequence() -> None:
    stats = ReceiverStats(8000)      # MIN_SEQUENTIAL = 2 (A.1)
    assert stats.received(100, 0, 0.0) is False
    assert stats.received(101, 160, 0.02) is True
    feed(stats, [102, 103])
    assert (stats.base_seq, stats.received_count, stats.expected) == (101, 3, 3)


@pytest.mark.parametrize(("arrivals", "jitter"), [
    # transit (timestamp units): 0, 0, 40, 0 → D = 0, 40, 40 → J = 0, 2.5, 4.84375
    ([0.0, 0.020, 0.045, 0.060], 4.84375),
    ([0.0, 0.020, 0.040, 0.060], 0.0),                # steady arrival: no jitter
    # transit 0, 80, 0 → D = 80, 80 → J = 5, 5 + 75/16
    ([0.0, 0.030, 0.040], 5 + 75 / 16),
])
def test_interarrival_jitter_follows_a8(arrivals: list[float], jitter: float) -> None:
    stats = ReceiverStats(8000, probation=0)
    feed(stats, list(range(len(arrivals))), arrivals=arrivals)
    assert stats.jitter == pytest.approx(jitter)
    assert stats.jitter_ms == pytest.approx(jitter / 8)
    assert stats.report_block().jitter == int(jitter)
