"""A tiny world that answers a ClientConnectivity's actions, for table tests in virtual time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from simulator.roles import client_state as cs
from simulator.roles.settings import RoleSettings


@dataclass
class World:
    cloud_down: list[tuple[float, float]] = field(default_factory=list)  # [start, end) intervals
    sba_down: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    token_service_down: bool = False
    sba_refuses: Callable[[str, float], str | None] = lambda sba, t: None

    def cloud_up(self, t: float) -> bool:
        return not any(a <= t < b for a, b in self.cloud_down)

    def sba_up(self, sba: str, t: float) -> bool:
        return not any(a <= t < b for a, b in self.sba_down.get(sba, []))

    def answer(self, action: cs.Output, t: float) -> cs.Observation | None:
        match action:
            case cs.SendKeepalive() | cs.ProbeCloud():
                return cs.KeepaliveOk() if self.cloud_up(t) else cs.KeepaliveFailed("connection reset")
            case cs.RenewToken():
                return cs.TokenRenewed() if self.cloud_up(t) and not self.token_service_down else None
            case cs.CheckInAtSba(sba=sba) | cs.ProbeSba(sba=sba):
                return cs.SbaProbeOk(sba) if self.sba_up(sba, t) else cs.SbaProbeFailed(sba, "unreachable")
            case cs.RegisterAtSba(sba=sba):
                if not self.sba_up(sba, t):
                    return None  # silence: the machine's own timeout handles it
                refusal = self.sba_refuses(sba, t)
                return cs.SbaRegistrationRefused(sba, refusal) if refusal else cs.SbaRegistered(sba)
        return None


@dataclass
class Run:
    client: cs.ClientConnectivity
    world: World
    outputs: list[tuple[float, cs.Output]] = field(default_factory=list)

    def _feed(self, produced: list[cs.Output], t: float) -> None:
        queue = list(produced)
        while queue:
            out = queue.pop(0)
            self.outputs.append((t, out))
            answer = self.world.answer(out, t)
            if answer is not None:
                new = self.client.handle(answer, t)
                queue.extend(new)

    def until(self, t_end: float) -> None:
        while True:
            deadline = self.client.next_deadline()
            if deadline is None or deadline > t_end:
                break
            self._feed(self.client.handle_timer(deadline), deadline)
        self.client.now = max(self.client.now, t_end)

    def observe(self, t: float, observation: cs.Observation) -> None:
        self.until(t)
        self._feed(self.client.handle(observation, t), t)

    def states(self) -> list[tuple[float, str]]:
        return [(t, str(o.new)) for t, o in self.outputs if isinstance(o, cs.StateChanged)]

    def of(self, kind: type) -> list[tuple[float, cs.Output]]:
        return [(t, o) for t, o in self.outputs if isinstance(o, kind)]


def start(world: World, sba_policy=("sba1.contoso.com",), settings: RoleSettings | None = None, at: float = 0.0) -> Run:
    client = cs.ClientConnectivity("alice@contoso.com", sba_policy=tuple(sba_policy),
                                   settings=settings or RoleSettings(), now=at)
    return Run(client, world)
