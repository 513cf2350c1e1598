"""A small lab for the SBC and PSTN role tests: real SBC and carrier, stand-in Teams proxies and SBA.

The stand-ins are just enough of Direct Routing's far side to drive the SBC: they listen with mutual
TLS on 5061, answer OPTIONS, and answer INVITEs as `mode` says; they record what they received.
The real proxy and SBA are exercised in tests/e2e.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from simulator.lab import Lab, parse_lab
from simulator.sip import Request, Response
from simulator.sip.builders import make_request, new_branch, new_call_id, new_tag
from simulator.sip.dialog import Dialog
from simulator.sip.sdp import PCMA, PCMU, SessionDescription, make_answer, make_offer
from simulator.tenant.model import Gateway, Tenant

LAB = """\
lab: sbc-test
sites: [internet, dc1, dc2, dc3, branch, pstn]
links:
  - {name: dc-sip, a: internet, b: dc1, latency: 5ms}
  - {name: dc-sip2, a: internet, b: dc2, latency: 40ms}
  - {name: dc-sip3, a: internet, b: dc3, latency: 70ms}
  - {name: wan, a: branch, b: internet, latency: 20ms}
  - {name: trunk, a: branch, b: pstn, latency: 2ms}
hosts:
  - {name: sip.pstnhub.microsoft.com, site: dc1}
  - {name: sip2.pstnhub.microsoft.com, site: dc2}
  - {name: sip3.pstnhub.microsoft.com, site: dc3}
  - {name: sbc1.contoso.com, site: branch}
  - {name: sba1.contoso.com, site: branch}
  - {name: carrier.example, site: pstn}
nodes:
  - {name: sip, host: sip.pstnhub.microsoft.com, role: teams_proxy}
  - {name: sip2, host: sip2.pstnhub.microsoft.com, role: teams_proxy}
  - {name: sip3, host: sip3.pstnhub.microsoft.com, role: teams_proxy}
  - name: pstn
    host: carrier.example
    role: pstn
    options:
      numbers:
        "4255550199": answer
        "4255550188": {behaviour: answer, answer_after: 8s}
        "4255550177": ring
        "4255550166": busy
      default: unreachable
  - {name: sbc1, host: sbc1.contoso.com, role: sbc, options: {carrier: pstn, sba: sba1, max_sessions: 2}}
  - {name: sba1, host: sba1.contoso.com, role: sba}
"""


def tenant() -> Tenant:
    t = Tenant()
    t.add("gateway", Gateway("sbc1.contoso.com", 5061, enabled=True))
    return t


class FakeTeams:
    """A stand-in proxy / SBA: mutual TLS on 5061; `mode` answers INVITEs: answer | busy | 503-retry | 404."""

    def __init__(self, ctx: Any, spec: Any) -> None:
        self.ctx, self.spec = ctx, spec
        self.mode = "answer"
        self.invites: list[Request] = []
        self.options: list[Request] = []
        self.byes: list[Request] = []
        self.reinvites: list[Request] = []
        self.dialogs: list[Dialog] = []
        self.rng = ctx.rng_for(spec.name)
        self.ep: Any = None

    async def start(self) -> None:
        from simulator.endpoint import TlsConfig

        self.tls = TlsConfig(identity=self.ctx.identities[self.spec.fqdn], trust=self.ctx.trust)
        self.ep = self.ctx.endpoint(self.spec)
        self.ep.tls = self.tls
        self.ep.on_request = self.on_request
        await self.ep.listen("tls", 5061, tls=self.tls)
        if self.spec.role == "sba":
            self.ctx.events.logger().info("sba.sync", node=self.spec.name, version=1, ok=True)

    async def stop(self) -> None:
        await self.ep.close()

    def on_request(self, incoming: Any) -> None:
        request = incoming.request
        if request.method == "OPTIONS":
            self.options.append(request)
            incoming.respond(200)
        elif request.method == "INVITE" and request.to.tag is None:
            self.invites.append(request)
            if self.mode == "503-retry":
                incoming.respond(503, headers=[("Retry-After", "30")])
            elif self.mode == "busy":
                incoming.respond(486)
            elif self.mode == "404":
                incoming.respond(404)
            else:
                tag = new_tag(self.rng)
                dialog = Dialog.from_uas_request(request, tag, local_contact=self.contact, sent_by=self.spec.fqdn,
                                                 transport="TLS")
                self.dialogs.append(dialog)
                incoming.respond(180, to_tag=tag)
                answer = make_answer(SessionDescription.parse(request.body), "52.112.0.9", 30000, [PCMU, PCMA])
                dialog.local_sdp = answer
                dialog.confirm()
                incoming.respond(200, to_tag=tag, body=answer.to_bytes(), content_type="application/sdp",
                                 contact=self.contact)
        elif request.method == "BYE":
            self.byes.append(request)
            incoming.respond(200)
        elif request.method == "INVITE":
            self.reinvites.append(request)
            answer = make_answer(SessionDescription.parse(request.body), "52.112.0.9", 30000, [PCMU, PCMA])
            incoming.respond(200, body=answer.to_bytes(), content_type="application/sdp", contact=self.contact)
        else:
            incoming.respond(405)

    @property
    def contact(self) -> str:
        return f"<sip:{self.spec.fqdn}:5061;transport=tls>"

    def invite(self, number: str, sbc: str = "sbc1.contoso.com") -> Any:
        """Send an INVITE and return its ClientTx (for tests that cancel it)."""
        from simulator.endpoint import Target

        offer = make_offer("52.112.0.9", 30000, [PCMU, PCMA])
        invite = make_request(
            "INVITE", f"sip:{number}@{sbc}:5061;user=phone",
            from_=f"<sip:+12065550201@{self.spec.fqdn};user=phone>;tag={new_tag(self.rng)}",
            to=f"<sip:{number}@{sbc};user=phone>", call_id=new_call_id(self.rng, self.spec.fqdn), cseq=1,
            via=f"SIP/2.0/TLS {self.spec.fqdn}:5061;branch={new_branch(self.rng)}", contact=self.contact,
            body=offer.to_bytes(), content_type="application/sdp")
        return self.ep.request(invite, Target(sbc, 5061, "tls", tls=self.tls))

    async def call(self, number: str, sbc: str = "sbc1.contoso.com", *, asserted: str | None = None,
                   from_: str | None = None, headers: tuple[tuple[str, str], ...] = (),
                   body: Callable[[bytes], tuple[str, bytes]] | None = None) -> tuple[Response, Dialog | None]:
        """An outbound Direct Routing call: INVITE sip:<number>@<sbc> over mutual TLS; ACKs a 2xx.
        `from_` replaces the From (without its tag), `body` makes (content type, body) of the SDP offer."""
        from simulator.endpoint import Target

        offer = make_offer("52.112.0.9", 30000, [PCMU, PCMA])
        extra = [("P-Asserted-Identity", f"<sip:{asserted}@{self.spec.fqdn};user=phone>")] if asserted else []
        content_type, payload = body(offer.to_bytes()) if body else ("application/sdp", offer.to_bytes())
        invite = make_request(
            "INVITE", f"sip:{number}@{sbc}:5061;user=phone",
            from_=f"{from_ or f'<sip:+12065550201@{self.spec.fqdn};user=phone>'};tag={new_tag(self.rng)}",
            to=f"<sip:{number}@{sbc};user=phone>", call_id=new_call_id(self.rng, self.spec.fqdn), cseq=1,
            via=f"SIP/2.0/TLS {self.spec.fqdn}:5061;branch={new_branch(self.rng)}", contact=self.contact,
            body=payload, content_type=content_type, extra_headers=[*extra, *headers])
        target = Target(sbc, 5061, "tls", tls=self.tls)
        response = await self.ep.request(invite, target).final()
        if response.status >= 300:
            return response, None
        dialog = Dialog.from_uac_response(invite, response, local_contact=self.contact, sent_by=self.spec.fqdn,
                                          transport="TLS")
        dialog.local_sdp = offer
        self.ep.send_ack(dialog.create_ack(1, self.rng), target)
        self.dialogs.append(dialog)
        return response, dialog

    async def in_dialog(self, dialog: Dialog, method: str, sbc: str = "sbc1.contoso.com", **kw: Any) -> Response:
        from simulator.endpoint import Target

        request = dialog.create_hold(self.rng) if method == "HOLD" else dialog.create_request(method, self.rng, **kw)
        target = Target(sbc, 5061, "tls", tls=self.tls)
        response = await self.ep.request(request, target).final()
        if request.method == "INVITE" and response.status < 300:
            self.ep.send_ack(dialog.create_ack(request.cseq.seq, self.rng), target)
        return response


def build(certs: Any, **kw: Any) -> Lab:
    spec = parse_lab(kw.pop("text", LAB), "sbc-test.yaml")
    return Lab.build(spec, tenant=tenant(), certs_dir=certs, roles={"teams_proxy": FakeTeams, "sba": FakeTeams}, **kw)


async def settle(seconds: float = 1.0) -> None:
    await asyncio.sleep(seconds)
