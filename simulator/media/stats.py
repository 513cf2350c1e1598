"""What a receiver knows about one RTP source: RFC 3550 Appendix A.1, A.3 and A.8, as written there.

`ReceiverStats.received(sequence, timestamp, arrival)` takes every packet that arrived;
`report_block()` gives the figures of an RTCP report block (§6.4.1) and starts the next interval.

- Sequence numbers (A.1): a source is valid after MIN_SEQUENTIAL packets in sequence (probation);
  the sequence number space is extended by a cycle count; a jump larger than MAX_DROPOUT, or a
  step back larger than MAX_MISORDER, is taken as a restart once the next packet confirms it.
- Loss (A.3): expected = extended highest sequence − base + 1; cumulative lost = expected −
  received (duplicates count as received, so it can be negative); the fraction lost is that of the
  interval since the previous report, in 1/256, 0 when no packet was lost or more arrived.
- Interarrival jitter (A.8, §6.4.1): D = (Rj − Ri) − (Sj − Si) in timestamp units between
  consecutive arrivals, J += (|D| − J) / 16. The first packet only sets the transit time.
"""

from __future__ import annotations

from dataclasses import dataclass

RTP_SEQ_MOD = 1 << 16
MAX_DROPOUT = 3000
MAX_MISORDER = 100
MIN_SEQUENTIAL = 2


@dataclass(frozen=True)
class BlockFigures:
    """The receiver-side fields of a report block (RFC 3550 §6.4.1), before LSR/DLSR."""

    fraction_lost: int  # 0..255: the interval's fraction lost, in 1/256
    cumulative_lost: int  # clamped to the signed 24-bit field
    highest_sequence: int  # extended highest sequence number received
    jitter: int  # interarrival jitter, in timestamp units


class ReceiverStats:
    """Sequence, loss and jitter of one source, fed with the packets that arrived (A.1, A.3, A.8)."""

    def __init__(self, clock_rate: int, *, probation: int = MIN_SEQUENTIAL) -> None:
        self.clock_rate = clock_rate
        self.max_seq = 0
        self.cycles = 0
        self.base_seq = 0
        self.bad_seq = RTP_SEQ_MOD + 1  # so seq == bad_seq is false
        self.probation = probation
        self.received_count = 0
        self.expected_prior = 0
        self.received_prior = 0
        self.transit: float | None = None
        self.jitter = 0.0  # in timestamp units, kept unrounded as A.8's floating-point form
        self.started = False

    # --- A.1 ---------------------------------------------------------------------------------
    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = 0
        self.received_count = 0
        self.received_prior = 0
        self.expected_prior = 0

    def _update_seq(self, seq: int) -> bool:
        """A.1 update_seq: False for a packet that does not count (probation, a wild jump)."""
        udelta = (seq - self.max_seq) % RTP_SEQ_MOD
        if not self.started:
            self.started = True
            self.max_seq = (seq - 1) % RTP_SEQ_MOD
            udelta = 1
            if self.probation == 0:
                self._init_seq(seq)
                self.received_count += 1
                return True
        if self.probation:
            if seq == (self.max_seq + 1) % RTP_SEQ_MOD:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init_seq(seq)
                    self.received_count += 1
                    return True
            else:
                self.probation = MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return False
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += RTP_SEQ_MOD  # the sequence number wrapped
            self.max_seq = seq
        elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
            if seq == self.bad_seq:
                self._init_seq(seq)  # two packets in sequence: the source restarted
            else:
                self.bad_seq = (seq + 1) % RTP_SEQ_MOD
                return False
        # else: a duplicate or reordered packet, counted below
        self.received_count += 1
        return True

    # --- the receiver's entry point ---------------------------------------------------------
    def received(self, seq: int, timestamp: int, arrival: float) -> bool:
        """One packet arrived at `arrival` seconds; False when A.1 does not count it."""
        if not self._update_seq(seq):
            return False
        transit = arrival * self.clock_rate - timestamp  # A.8: both in timestamp units
        if self.transit is not None:
            d = abs(transit - self.transit)
            self.jitter += (d - self.jitter) / 16.0
        self.transit = transit
        return True

    # --- A.3 ---------------------------------------------------------------------------------
    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1 if self.received_count else 0

    @property
    def lost(self) -> int:
        return self.expected - self.received_count

    @property
    def jitter_ms(self) -> float:
        return 1000.0 * self.jitter / self.clock_rate

    def report_block(self) -> BlockFigures:
        """The figures for a report block, and the start of the next reporting interval."""
        expected = self.expected
        expected_interval = expected - self.expected_prior
        received_interval = self.received_count - self.received_prior
        self.expected_prior, self.received_prior = expected, self.received_count
        lost_interval = expected_interval - received_interval
        fraction = 0 if expected_interval == 0 or lost_interval <= 0 else (lost_interval << 8) // expected_interval
        cumulative = max(-(1 << 23), min((1 << 23) - 1, self.lost))
        return BlockFigures(fraction, cumulative, self.extended_max & 0xFFFFFFFF, int(self.jitter))
