"""A small stand-in for simulator.lab.Lab (same API, docs/CONTRACTS.md) to test the runner alone.

Two Seattle clients that behave like the real ones at the level of events: a cut of wan-seattle
sends carol offline after `client_detection_s` and into appliance mode 3 s later (dave 5 s after
her); the restore brings them back online 20 s / 25 s later. Calls answer 200 through the
client's registrar and log one INVITE/200 pair as sip.sent / sip.received.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from simulator.events import EventLog
from simulator.tenant.cli import load_tenant

CLOUD, SBA = "sip.pstnhub.microsoft.com", "sba1.contoso.com"
ADDR = {"carol": "10.20.1.21", "dave": "10.20.1.22", "sip": "52.114.0.1", "sba1": "10.20.0.5"}


@dataclass
class Spec:
    name: str
    fqdn: str
    role: str
    options: dict = field(default_factory=dict)


class FakeCall:
    def __init__(self, client, dial: str, status: int) -> None:
        self.client, self.callee, self.status = client, dial, status
        self.call_id = f"{client.spec.name}-{dial}"
        self.registrar = client.registrar
        self.answered_by = f"sip:{dial}@{self.registrar}" if status == 200 else None
        self.via_sba = self.registrar == SBA
        self.reason = None if status == 200 else "Service Unavailable"
        self.actions: list[str] = []

    async def hold(self):
        self.actions.append("hold")
        return 200

    async def resume(self):
        self.actions.append("resume")
        return 200

    async def transfer(self, target):
        self.actions.append(f"transfer {target}")
        return 202

    async def hangup(self):
        self.actions.append("hangup")
        self.client.lab.events.logger().info("call.ended", node=self.client.spec.name, call_id=self.call_id)
        return 200


class FakeClient:
    def __init__(self, lab, name: str, upn: str, order: int) -> None:
        self.lab, self.order = lab, order
        self.spec = Spec(name, f"{name}-pc.contoso.com", "teams_client", {"upn": upn})
        self.upn = upn
        self.state, self.registrar = "offline", None
        self.restarts = 0
        self.answer_policy = None

    def set(self, state: str, registrar: str | None) -> None:
        self.state, self.registrar = state, registrar
        self.lab.events.logger().info("client.state", node=self.spec.name, user=self.upn, state=state, registrar=registrar)

    async def restart(self) -> None:
        self.restarts += 1

    async def place_call(self, dial: str) -> FakeCall:
        if self.registrar is None:
            return FakeCall(self, dial, 480)
        call = FakeCall(self, dial, 200)
        server = "sip" if self.registrar == CLOUD else "sba1"
        src, dst = f"{ADDR[self.spec.name]}:50123", f"{ADDR[server]}:443"
        invite = (f"INVITE sip:{dial}@{self.registrar} SIP/2.0\r\nTo: <sip:{dial}@x>\r\nCall-ID: {call.call_id}\r\n"
                  f"CSeq: 1 INVITE\r\n\r\nv=0\r\nc=IN IP4 {ADDR[self.spec.name]}\r\n")
        ok = f"SIP/2.0 200 OK\r\nTo: <sip:{dial}@x>;tag=1\r\nCall-ID: {call.call_id}\r\nCSeq: 1 INVITE\r\n\r\n" \
             f"v=0\r\nc=IN IP4 {ADDR[server]}\r\n"
        ev = self.lab.events.logger().info
        common = dict(transport="tls", conn="k", call_id=call.call_id, cseq="1 INVITE")
        ev("sip.sent", node=self.spec.name, src=src, dst=dst, summary=f"INVITE sip:{dial}", message=invite, **common)
        await asyncio.sleep(0.05)
        ev("sip.received", node=server, src=src, dst=dst, summary=f"INVITE sip:{dial}", message=invite, **common)
        ev("sip.sent", node=server, src=dst, dst=src, summary="200 OK", message=ok, **common)
        await asyncio.sleep(0.05)
        ev("sip.received", node=self.spec.name, src=dst, dst=src, summary="200 OK", message=ok, **common)
        ev("call.answered", node=self.spec.name, call_id=call.call_id, caller=self.upn, callee=dial, status=200,
           path=self.registrar)
        return call


class FakeLink:
    def __init__(self, lab, name: str) -> None:
        self.lab, self.name, self.state = lab, name, "up"

    def _set(self, state: str) -> None:
        previous, self.state = self.state, state
        self.lab.events.logger().info(f"link.{state}", link=self.name, previous=previous)
        self.lab.link_changed(self, previous)

    def down(self):
        self._set("down")

    def blackhole(self):
        self._set("blackhole")

    def up(self):
        self._set("up")

    def impair(self, latency=None, jitter=None, loss=None):
        self.lab.events.logger().info("link.impaired", link=self.name, latency=latency, jitter=jitter, loss=loss)


class FakeSba:
    def __init__(self, lab) -> None:
        self.lab, self.version = lab, 1
        self.spec = Spec("sba1", SBA, "sba")

    async def sync_now(self):
        self.version += 1
        self.lab.events.logger().info("sba.sync", node="sba1", version=self.version, ok=True)


class FakeLab:
    instances: list[FakeLab] = []

    def __init__(self, lab_path, tenant, network, seed, settings) -> None:
        self.lab_path, self.seed, self.settings = lab_path, seed, settings
        self.tenant = load_tenant(tenant)
        loop = asyncio.get_running_loop()
        self.events = EventLog(clock=loop.time)
        self.detection = float(settings.get("client_detection_s", 30))
        self.links = {"wan-seattle": FakeLink(self, "wan-seattle")}
        self.clients = {"carol@contoso.com": FakeClient(self, "carol", "carol@contoso.com", 0),
                        "dave@contoso.com": FakeClient(self, "dave", "dave@contoso.com", 1)}
        self.nodes = {c.spec.name: c for c in self.clients.values()} | {"sba1": FakeSba(self)}
        self.started = self.stopped = False
        self._timers: list[asyncio.TimerHandle] = []
        FakeLab.instances.append(self)

    @classmethod
    def load(cls, lab_path, *, tenant, network="sim", seed=1, settings=None, certs_dir=None):
        return cls(lab_path, tenant, network, seed, settings or {})

    async def start(self) -> None:
        self.started = True
        for c in self.clients.values():
            c.set("online", CLOUD)
        self.events.logger().info("sba.sync", node="sba1", version=1, ok=True)

    async def stop(self) -> None:
        self.stopped = True
        for t in self._timers:
            t.cancel()

    def link(self, name):
        return self.links[name]

    def client(self, upn):
        return self.clients[upn.lower()]

    def node(self, name):
        return self.nodes[name]

    def link_changed(self, link: FakeLink, previous: str) -> None:
        loop = asyncio.get_running_loop()
        for c in self.clients.values():
            if link.state in ("down", "blackhole"):
                t = self.detection + 5 * c.order
                self._timers.append(loop.call_later(t, c.set, "offline", None))
                self._timers.append(loop.call_later(t + 3, c.set, "appliance", SBA))
            else:
                self._timers.append(loop.call_later(20 + 5 * c.order, c.set, "online", CLOUD))
