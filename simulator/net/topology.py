"""The lab's topology: sites, the links between them, and what a path through them does to a packet.

Both networks follow it: the sim network (sim.py) applies it to its own packets, the real
network (real.py, relay.py) to the bytes its relays carry. Hosts live in sites; a link joins
two sites. The path between two hosts is the fixed shortest chain of links between their sites
(static routing: a down link is not routed around, just as a branch WAN cut is not). Hosts in
the same site talk over the site LAN: no link, no delay, never cut.

A link is `up`, `down` or `blackhole`, and has a one-way `latency` (seconds), a `jitter`
(each packet gets an extra uniform 0..jitter seconds) and a `loss` probability per datagram or
per stream transmission attempt, both ways. A loss can also hit one direction only
(`loss_toward`: the packets headed for one of its two sites, e.g. a firewall dropping what comes
in): a path knows which way it crosses each link. Changes go through the network so they become
events.
"""

from __future__ import annotations

import errno
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulator.net.base import Host
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
    loss_toward: dict[str, float] = field(default_factory=dict)  # site -> loss of the packets headed for it only
    network: SimNetwork | None = field(default=None, repr=False)

    def down(self) -> None:
        """Cut: established connections through it are reset, new connects refused at once."""
        self._net().set_link_state(self.name, DOWN)

    def up(self) -> None:
        self._net().set_link_state(self.name, UP)

    def blackhole(self) -> None:
        """Silent drop: datagrams and stream bytes vanish, connects hang (SYNs retried)."""
        self._net().set_link_state(self.name, BLACKHOLE)

    def impair(self, *, latency: float | None = None, jitter: float | None = None, loss: float | None = None,
               toward: str | None = None) -> None:
        """Change latency, jitter or loss; with `toward` (one of its two sites) the loss is one way:
        only the packets headed for that site."""
        self._net().impair_link(self.name, latency=latency, jitter=jitter, loss=loss, toward=toward)

    def loss_to(self, site: str) -> float:
        """The chance a packet crossing toward `site` is lost: the loss both ways, then that direction's."""
        one_way = self.loss_toward.get(site, 0.0)
        return self.loss if not one_way else 1.0 - (1.0 - self.loss) * (1.0 - one_way)

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
    """The links between two sites, in order, and the site each crossing heads for. Empty = same site (LAN)."""

    links: tuple[Link, ...]
    toward: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return [link.name for link in self.links]

    def first(self, state: str) -> Link | None:
        """The first link on the path in `state`, if any (names the culprit in errors/events)."""
        for link in self.links:  # on every segment sent: a plain loop, no generator
            if link.state == state:
                return link
        return None

    def loss(self) -> float:
        survive = 1.0
        for link, site in zip(self.links, self.toward, strict=True):
            survive *= 1.0 - link.loss_to(site)
        return 1.0 - survive

    def lossy(self) -> Link | None:
        """The first link that loses packets going this way (names the culprit of a loss)."""
        for link, site in zip(self.links, self.toward, strict=True):
            if link.loss_to(site) > 0:
                return link
        return None

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
        for link in self.links:
            if link.loss > 0 or link.loss_toward:  # only then compute (and maybe draw): most paths are lossless
                p = self.loss()
                return p > 0 and rng.random() < p
        return False


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
                    chain: list[tuple[Link, str]] = []
                    node = dst
                    while node != src:
                        heads_for = node
                        node, hop = previous[node]
                        chain.append((hop, heads_for))
                    chain.reverse()
                    return Path(tuple(hop for hop, _ in chain), tuple(site for _, site in chain))
                following.append(other)
        frontier = following
    return None


DEFAULT_SITE = "lan"


class SiteTopology:
    """Sites, links and the fixed paths between them: the one topology both networks share
    (the real network realizes the same links through its relay). The host table and the
    link state changes are each network's own."""

    sites: dict[str, int]
    links: dict[str, Link]

    def _init_topology(self) -> None:
        self.sites = {}
        self.links = {}
        self._adjacency: dict[str, list[Link]] = {}
        self._paths: dict[tuple[str, str], Path] = {}

    def add_site(self, name: str) -> str:
        if not isinstance(name, str) or not name:
            raise ValueError(f"bad site name {name!r}")
        self.sites.setdefault(name, len(self.sites) + 1)
        return name

    def add_link(self, name: str, a: str, b: str, *, latency: float = 0.0, jitter: float = 0.0, loss: float = 0.0) -> Link:
        """Join sites `a` and `b` (created if new) with a link named `name`."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"bad link name {name!r}")
        if name in self.links:
            raise ValueError(f"link {name!r} already exists ({self.links[name].a} <-> {self.links[name].b})")
        if a == b:
            raise ValueError(f"link {name!r} joins site {a!r} to itself")
        check_impairment(name, latency, jitter, loss)
        self.add_site(a)
        self.add_site(b)
        link = Link(name, a, b, latency=float(latency), jitter=float(jitter), loss=float(loss), network=self)  # type: ignore[arg-type]
        self.links[name] = link
        self._adjacency.setdefault(a, []).append(link)
        self._adjacency.setdefault(b, []).append(link)
        self._paths.clear()
        return link

    def link(self, name: str) -> Link:
        try:
            return self.links[name]
        except KeyError:
            raise KeyError(f"no link {name!r}; links: {', '.join(sorted(self.links)) or 'none'}") from None

    def impair_link(
        self, name: str, *, latency: float | None = None, jitter: float | None = None, loss: float | None = None,
        toward: str | None = None,
    ) -> None:
        """Change a link's latency, jitter or loss; with `toward` (one of the link's sites) the loss
        applies to the packets headed for that site only (latency and jitter stay both ways)."""
        link = self.link(name)
        if toward is not None:
            if toward not in (link.a, link.b):
                raise ValueError(f"link {name}: a one-way loss heads for {link.a} or {link.b}, not {toward!r}")
            if latency is not None or jitter is not None or loss is None:
                raise ValueError(f"link {name}: a one-way impairment is a loss only")
            check_impairment(name, link.latency, link.jitter, loss)
            if loss:
                link.loss_toward[toward] = float(loss)
            else:
                link.loss_toward.pop(toward, None)
            self.log.info("link.impaired", link=name, latency=link.latency, jitter=link.jitter,  # type: ignore[attr-defined]
                          loss=link.loss, toward=toward, one_way_loss=float(loss))
            return
        new = (
            link.latency if latency is None else latency,
            link.jitter if jitter is None else jitter,
            link.loss if loss is None else loss,
        )
        check_impairment(name, *new)
        link.latency, link.jitter, link.loss = (float(v) for v in new)
        self.log.info("link.impaired", link=name, latency=link.latency, jitter=link.jitter, loss=link.loss)  # type: ignore[attr-defined]

    def _host_site(self, host: str, site: str | None) -> str:
        """The site a new host joins (the default LAN when none is named); a clear error if unknown."""
        site = self.add_site(DEFAULT_SITE) if site is None else site
        if site not in self.sites:
            raise ValueError(f"host {host}: unknown site {site!r}; sites: {', '.join(self.sites) or 'none'} "
                             f"(add_site() or add_link() first)")
        return site

    def path(self, a: str, b: str) -> Path:
        """The links between hosts `a` and `b` (names or addresses), in order."""
        return self._path(self.host(a), self.host(b))  # type: ignore[attr-defined]

    def _path(self, src: Host, dst: Host) -> Path:
        key = (src.site or DEFAULT_SITE, dst.site or DEFAULT_SITE)
        if key not in self._paths:
            path = shortest_path(self._adjacency, *key)
            if path is None:
                raise OSError(errno.EHOSTUNREACH, f"no route from {src.name} (site {key[0]}) to {dst.name} (site {key[1]})")
            self._paths[key] = path
        return self._paths[key]
