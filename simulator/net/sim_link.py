"""Links of the sim network and what a path through them does to a packet.

Topology model (documented in sim.py): hosts live in sites; a link joins two sites. The path
between two hosts is the fixed shortest chain of links between their sites (static routing: a
down link is not routed around, just as a branch WAN cut is not). Hosts in the same site talk
over the site LAN: no link, no delay, never cut.

A link is `up`, `down` or `blackhole`, and has a one-way `latency` (seconds), a `jitter`
(each packet gets an extra uniform 0..jitter seconds) and a `loss` probability per datagram or
per stream transmission attempt. Changes go through the network so they become events.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulator.net.sim import SimNetwork

UP = "up"
DOWN = "down"
BLACKHOLE = "blackhole"
LINK_STATES = (UP, DOWN, BLACKHOLE)


@dataclass(eq=False)
class Link:
    """A named link (`wan-seattle`) between two sites. Change it with its methods."""

    name: str
    a: str
    b: str
    latency: float = 0.0
    jitter: float = 0.0
    loss: float = 0.0
    state: str = UP
    network: SimNetwork | None = field(default=None, repr=False)

    def down(self) -> None:
        """Cut: established connections through it are reset, new connects refused at once."""
        self._net().set_link_state(self.name, DOWN)

    def up(self) -> None:
        self._net().set_link_state(self.name, UP)

    def blackhole(self) -> None:
        """Silent drop: datagrams and stream bytes vanish, connects hang (SYNs retried)."""
        self._net().set_link_state(self.name, BLACKHOLE)

    def impair(self, *, latency: float | None = None, jitter: float | None = None, loss: float | None = None) -> None:
        self._net().impair_link(self.name, latency=latency, jitter=jitter, loss=loss)

    def _net(self) -> SimNetwork:
        if self.network is None:
            raise RuntimeError(f"link {self.name} is not part of a network")
        return self.network


def check_impairment(name: str, latency: float, jitter: float, loss: float) -> None:
    for what, value in (("latency", latency), ("jitter", jitter)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ValueError(f"link {name}: {what} must be a number of seconds >= 0, got {value!r}")
    if isinstance(loss, bool) or not isinstance(loss, int | float) or not 0 <= loss <= 1:
        raise ValueError(f"link {name}: loss must be a probability 0..1, got {loss!r}")


@dataclass(frozen=True)
class Path:
    """The links between two sites, in order. Empty = same site (LAN)."""

    links: tuple[Link, ...]

    @property
    def names(self) -> list[str]:
        return [link.name for link in self.links]

    def first(self, state: str) -> Link | None:
        """The first link on the path in `state`, if any (names the culprit in errors/events)."""
        return next((link for link in self.links if link.state == state), None)

    def loss(self) -> float:
        survive = 1.0
        for link in self.links:
            survive *= 1.0 - link.loss
        return 1.0 - survive

    def delay(self, rng: random.Random) -> float:
        """One-way delay for one packet; draws from `rng` only for links with jitter."""
        total = 0.0
        for link in self.links:
            total += link.latency
            if link.jitter > 0:
                total += rng.uniform(0.0, link.jitter)
        return total

    def base_rtt(self) -> float:
        return 2.0 * sum(link.latency + link.jitter / 2 for link in self.links)

    def lost(self, rng: random.Random) -> bool:
        """Whether one packet is lost to impairment (not counting blackhole)."""
        p = self.loss()
        return p > 0 and rng.random() < p


def shortest_path(adjacency: dict[str, list[Link]], src: str, dst: str) -> Path | None:
    """Breadth-first over sites; neighbours in link-name order, so ties break the same way every run."""
    if src == dst:
        return Path(())
    previous: dict[str, tuple[str, Link]] = {}
    frontier: Sequence[str] = [src]
    seen = {src}
    while frontier:
        following: list[str] = []
        for site in frontier:
            for link in sorted(adjacency.get(site, []), key=lambda link: link.name):
                other = link.b if link.a == site else link.a
                if other in seen:
                    continue
                seen.add(other)
                previous[other] = (site, link)
                if other == dst:
                    chain: list[Link] = []
                    node = dst
                    while node != src:
                        node, hop = previous[node]
                        chain.append(hop)
                    return Path(tuple(reversed(chain)))
                following.append(other)
        frontier = following
    return None
