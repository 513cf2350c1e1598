"""The Teams Direct Routing SIP proxy: one host of sip / sip2 / sip3.pstnhub.microsoft.com.

Three `TeamsProxy` objects (one per host, each its own region) share one `TeamsCloud`
(roles/teams_cloud.py): registrations, gateway health, CDRs, the SBA services. Behaviour follows
Microsoft's Direct Routing documentation [S1][S2][S4][S5][S12]; where it is silent the choice is in docs/ASSUMPTIONS.md.

    proxy = TeamsProxy(ctx, NodeSpec("sip", "sip.pstnhub.microsoft.com", "teams_proxy",
                                     options={"region": "noam"}))
    await proxy.start(); ...; await proxy.stop()        # restart() = stop + start

Two interfaces on the host (Topology.proxy_sbc_port / proxy_client_port):

- 5061, mutual TLS (Direct Routing): PSTN gateways (SBCs). Every request is checked [S2]: first
  Contact = an FQDN (403 for an IP address), named by the client certificate, a gateway paired
  with the tenant (`check_gateway_request`). A connection whose certificate names no paired
  gateway at all is refused outright after the handshake: `tls.name_mismatch` and close.
  - OPTIONS: answered 200; health fed (`GatewayHealth.options_received`); from then on this host
    sends its own OPTIONS to that Contact every `proxy_options_interval_s` [S2][S10] with its own
    certificate, and one not answered 2xx makes the gateway inactive until one is again
    (`probe_failed` / `probe_answered`); `gateway.health` on every change (active / demoted /
    inactive / disabled).
  - INVITE (PSTN -> Teams): inbound translation rules and reverse number lookup
    (`routing.route_inbound`): 404 when no user has the number, 480 when Location-Based Routing
    keeps the call from the user's endpoint [S21] or the user has no signed-in client; else B2BUA: a new INVITE to each of the user's clients over the connection
    it registered on (parallel fork, first 2xx wins, the rest cancelled).
- 443, server-auth TLS: Teams clients and SBAs.
  - REGISTER with `Authorization: Bearer` (roles/token.py): 401 without a valid unexpired token;
    binds user -> this connection; Expires: 0 or the connection closing unbinds.
  - OPTIONS: keepalive, 200.  MESSAGE `sip:sba-sync@...`: the SBA sync; `sip:sba-cdr@...`: the
    CDR upload (TeamsCloud.sync_reply / cdr_upload).
  - INVITE (Teams -> PSTN): to another Teams user's number or UPN -> that user's clients; else
    `routing.select_route` with this region's gateway health and the client's address (its site,
    emergency policy and location; Location-Based Routing leaves out the gateways toll-bypass rules
    forbid; none left: 403 "Call not allowed due to your organization's settings" [S21]),
    `route.decision`, then each gateway in order:
    MaxConcurrentSessions (alert at 90 %, 503 with `max_sessions_enforced`), outbound translation,
    the caller ID of the user's caller ID policy (withheld: From anonymous, P-Asserted-Identity and
    Privacy: id, RFC 3325), ForwardPai (P-Asserted-Identity + Privacy: id, From anonymous [S4]),
    an emergency call's location as PIDF-LO to a PidfLoSupported gateway (RFC 6442 [S22]); next gateway
    by the trunk failover rule (roles/gateway_attempts.py [S4][S5]): a FailoverResponseCode before
    any provisional other than 100, or FailoverTimeSeconds with none (the slow one is cancelled);
    a network failure (connect refused/timeout, TLS refused) is retried from the next proxy host,
    `proxy_datacenter_attempts` in all [S5][S7], before the gateway is passed over.

Calls are B2BUA calls (roles/b2bua.py: Leg, Call, CallState). In-dialog requests (ACK, BYE,
re-INVITE for hold/resume, UPDATE, INFO) are relayed to the other leg. A REFER from either leg is a blind transfer with the proxy as referee ([S2]: the proxy handles
the client's REFER itself when the SBC does not take REFER): 202, the REFERring leg leaves (its BYE
ends nothing else), the other party is connected to the Refer-To target — a Teams user's clients or
a PSTN number routed with the transferring user's policy — and re-INVITEd with the target's SDP;
the first call's CDR closes there and the transferred call gets its own. The REFER's implicit
subscription (RFC 3515 §2.4.4) is served in the REFER's dialog: NOTIFY `SIP/2.0 100 Trying`
(active), then the new call's final status line (terminated;reason=noresource), sent by
roles/b2bua.py's `TransferProgress` (as the SBA's); the transferor hangs up after the final one.

Events (besides the endpoint's sip.*), all with `node` = the proxy's node name:
- `gateway.health` (gateway, state: active|demoted|inactive|disabled, old, reason, silent_s, region);
  `gateway.sessions_alert|sessions_normal|sessions_rejected` (gateway, concurrent, max_sessions);
  `gateway.refused` (method, contact, status, rule, reason, peer): a request from an SBC refused [S2],
  `rule` the pairing rule it broke (contact, record_route, certificate, domain, paired);
  `tls.name_mismatch` (side="server", peer, certificate, detail): a connection closed because its
  certificate names no paired gateway; `gateway.options_failed` (gateway, contact, reason).
- `route.decision` (user, dialed, normalized, gateways in failover order, reasons, call_id, emergency,
  caller_id = the number presented or null);
  `route.attempt` (call_id, gateway, datacenter, attempt, outcome: answered|failover|final|network|
  cancelled|session_limit, status, detail).
- `call.started|ringing|answered|held|resumed|transferred|ended` (call_id, caller, callee, status,
  path="cloud", direction; `ended` adds result = the Microsoft code, or status "bye"/"transferred",
  end_reason, ended_by, and byes = how the BYEs it sent were answered); `leg.placed` (call_id,
  leg_call_id, peer); `call.path_lost` / `call.media_timeout` (leg): a call whose connection was reset
  ends on media silence (roles/b2bua.py), its gateway session released like any other;
  `call.transfer_notified` (call_id of the REFER's dialog, sipfrag, final, status = the
  transferor's answer); `call.client_unreachable`, `call.relay_failed`, `call.bye_failed`,
  `call.notify_failed` (warnings).
- `registrar.bound` (user, contact, expires, conn), `registrar.unbound` (user, contact, reason),
  `registrar.refused` (user, status, reason).
- `cloud.sync_served` (sba, version, have_version, users, identified_by), `cloud.sync_refused`,
  `cloud.cdr_upload` (uploader, count, new, duplicates), `cloud.cdr_upload_refused`.
- `cdr.record` (every `Cdr.to_dict()` field, `writer` = the proxy FQDN); `proxy.started|stopped|error`.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulator.endpoint import (
    Connection,
    Incoming,
    SipEndpoint,
    SipFailure,
    Target,
    TlsConfig,
    TransactionTimeout,
    TransportFailure,
)
from simulator.media.session import RoleMedia
from simulator.net.tls import TlsPolicy
from simulator.roles.b2bua import B2bua, Call, CallState, Leg, TransferProgress, accept_refer
from simulator.roles.cdr import (
    CallPath,
    CdrDraft,
    Direction,
    EndReason,
    ResultCode,
    default_end_reason,
    result_for,
    result_from_client,
    result_from_gateway,
)
from simulator.roles.context import NodeSpec, RoleContext
from simulator.roles.gateway_attempts import Action, FailoverRule, GatewayAttempts
from simulator.roles.tasks import RoleTasks
from simulator.roles.teams_cloud import (
    CDR_CONTENT_TYPE,
    CDR_URI_USER,
    DEFAULT_REGISTRATION_EXPIRES_S,
    SYNC_CONTENT_TYPE,
    SYNC_URI_USER,
    Registration,
    TeamsCloud,
)
from simulator.roles.token import Token
from simulator.sip import Request, Response, SipParseError
from simulator.sip.builders import (
    ANONYMOUS_FROM,
    make_request,
    new_branch,
    new_call_id,
    new_tag,
    onward_max_forwards,
)
from simulator.sip.dialog import Dialog
from simulator.sip.geolocation import PIDF_CONTENT_TYPE, SDP_CONTENT_TYPE, BodyPart, multipart_mixed, pidf_lo
from simulator.sip.uri import SipUri, TelUri
from simulator.tenant.model import Gateway, Tenant
from simulator.tenant.normalization import normalize
from simulator.tenant.routing import GatewayPlan, route_inbound, select_route

#: [S1]: the FQDN order for a NOAM tenant is NOAM, then EU, then ASIA
DEFAULT_REGIONS = {"sip": "noam", "sip2": "emea", "sip3": "apac"}


def default_region(fqdn: str) -> str:
    """The proxy's region when the lab file gives none: sip/sip2/sip3 in the NOAM order [S1]."""
    label, _, domain = fqdn.lower().partition(".")
    return DEFAULT_REGIONS.get(label, fqdn) if domain == "pstnhub.microsoft.com" else fqdn


@dataclass(frozen=True)
class GatewayCheck:
    """Who a request on the Direct Routing interface comes from [S2], or why it is refused."""

    gateway: Any | None  # the tenant's Gateway when accepted
    status: int | None  # the response to refuse with; None when accepted
    reason: str  # the reason phrase to send, or a short description when accepted
    detail: str = ""  # what the event log says
    contact_host: str | None = None
    rule: str | None = None  # the pairing rule a refusal broke (`gateway.refused` names it)


def tenant_domains(tenant: Tenant) -> set[str]:
    """The tenant's SIP domains as far as the lab knows them: its users' UPN domains and its
    gateways' parent domains (a real tenant registers them [S1])."""
    domains = {u.upn.lower().partition("@")[2] for u in tenant.users.values() if "@" in u.upn}
    domains |= {g.fqdn.lower().rstrip(".").partition(".")[2] for g in tenant.gateways.values()}
    return {d for d in domains if d}


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def check_gateway_request(tenant: Tenant, request: Request,
                          certificate_names: Callable[[str], bool] | None) -> GatewayCheck:
    """[S1][S2]: the first Contact must hold an FQDN (an IP address is refused with 403), the
    client certificate must name that FQDN (step 1), and the FQDN must be a PSTN gateway paired
    with the tenant found from its domain (steps 2-3). A top Record-Route, when the SBC adds one,
    must carry the same FQDN: the proxy routes in-dialog requests by it first, and an IP address
    or another name there fails the certificate check [S2][S10].

    `certificate_names(fqdn)` says whether the peer's certificate names `fqdn` (PeerInfo.matches);
    None when the peer presented no certificate. Microsoft documents a code only for the IP case;
    the others are "the call fails" — drlab answers 403 for them too (docs/ASSUMPTIONS.md).
    """
    try:
        contacts = request.contacts
        record_routes = request.record_routes
    except SipParseError as exc:
        return GatewayCheck(None, 400, "Bad Contact", f"Contact or Record-Route cannot be read: {exc.reason}",
                            rule="contact")
    if not contacts:
        return GatewayCheck(None, 400, "Contact Required",
                            "Direct Routing requires a Contact with the SBC FQDN in OPTIONS and INVITE [S2]",
                            rule="contact")
    uri = contacts[0].uri  # [S2]: the first value only
    if not isinstance(uri, SipUri):
        return GatewayCheck(None, 403, "Forbidden", f"first Contact {uri} is not a SIP URI", rule="contact")
    host = uri.host.lower().rstrip(".")
    if _is_ip(host):
        return GatewayCheck(None, 403, "Forbidden", f"Contact host {host} is an IP address, not the SBC FQDN [S2]",
                            host, rule="contact")
    if record_routes:
        top = record_routes[0].uri
        rr_host = top.host.lower().rstrip(".") if isinstance(top, SipUri) else str(top)
        if rr_host != host:
            what = "an IP address" if _is_ip(rr_host) else "another name"
            return GatewayCheck(None, 403, "Forbidden",
                                f"top Record-Route {rr_host} is {what}, not the SBC FQDN {host} of the Contact [S2]",
                                host, rule="record_route")
    if certificate_names is None:
        return GatewayCheck(None, 403, "Forbidden", "no client certificate on this connection", host,
                            rule="certificate")
    if not certificate_names(host):
        return GatewayCheck(None, 403, "Forbidden",
                            f"the client certificate does not name the Contact FQDN {host}", host, rule="certificate")
    domain = host.partition(".")[2]
    domains = tenant_domains(tenant)
    if host not in domains and domain not in domains:
        return GatewayCheck(None, 403, "Forbidden", f"no tenant has the domain of {host}", host, rule="domain")
    gateway = tenant.find("gateway", host)
    if gateway is None:
        return GatewayCheck(None, 403, "Forbidden",
                            f"{host} is not a PSTN gateway paired with the tenant (New-CsOnlinePSTNGateway)", host,
                            rule="paired")
    return GatewayCheck(gateway, None, f"gateway {gateway.fqdn}", "", host)


def number_of(uri: Any) -> str | None:
    """The number in a Request-URI: a tel: URI's number or a sip: URI's user part (with any
    `;ext=`, which reverse number lookup matches exactly [S14]); None when there is no user."""
    if isinstance(uri, TelUri):
        return uri.number
    if isinstance(uri, SipUri):
        return uri.user or None
    return None


# ==================================================================================================
# The role
# ==================================================================================================

TRUNK = "trunk"  # the Direct Routing interface (5061, mutual TLS); a leg toward a gateway
CLIENTS = "clients"  # the client interface (443)
CLIENT = "client"  # a leg toward a Teams client
MEDIA_PROCESSOR_PORT = 49152  # the start of the media processors' UDP range [S1]
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REFER"


@dataclass
class Outcome:
    """How one gateway (or client fork) attempt ended."""

    kind: str  # answered | failover | final | network | cancelled
    response: Response | None = None
    result: ResultCode | None = None
    detail: str = ""
    leg: Leg | None = None


class TeamsProxy(B2bua):
    def __init__(self, ctx: RoleContext, spec: NodeSpec) -> None:
        self.ctx = ctx
        self.spec = spec
        self.node = spec.name
        self.fqdn = spec.fqdn
        self.region = str(spec.options.get("region") or default_region(spec.fqdn))
        self.settings = ctx.settings
        self.cloud = TeamsCloud.of(ctx)
        self.log = ctx.logger(spec.name)
        self.rng = ctx.rng_for(spec.name)
        self.ep: Any = None
        self.running = False
        self._tasks = RoleTasks(self.log, "proxy.error")
        self._wake = asyncio.Event()
        # the Teams media processor of this datacenter (on the proxy's host in the lab): it anchors
        # the media of calls through a gateway without media bypass [S28]
        self.media = RoleMedia(ctx.network, self.fqdn, self.log, first_port=MEDIA_PROCESSOR_PORT, enabled=ctx.settings.media)

    # --- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        topo = self.ctx.topology
        identity = self.ctx.identities.get(self.fqdn)
        if identity is None:
            raise ValueError(f"teams_proxy {self.node}: no certificate for {self.fqdn} in the lab PKI "
                             "(the proxy presents one on 5061 and 443)")
        self.ep = self.ctx.endpoint(self.spec, relays_calls=True)
        self.ep.on_request = self._on_request
        self.ep.on_connection_closed = self._connection_closed
        # connections we open (OPTIONS and INVITEs to gateways) present our certificate: mutual TLS
        self.ep.tls = TlsConfig(identity=identity, trust=self.ctx.trust, policy=TlsPolicy.direct_routing())
        try:
            await self.ep.listen("tls", topo.proxy_sbc_port, tls=TlsConfig(
                identity=identity, trust=self.ctx.trust, policy=TlsPolicy.direct_routing(), require_client_cert=True))
            await self.ep.listen("tls", topo.proxy_client_port, tls=TlsConfig(
                identity=identity, trust=self.ctx.trust, policy=TlsPolicy.pstn(), require_client_cert=False))
        except BaseException:
            await self.ep.close()  # a half-started host must not keep its port for the next start
            raise
        self.running = True
        self.cloud.proxies.append(self)
        self._tasks.spawn(self._timer_loop())
        self.log.info("proxy.started", fqdn=self.fqdn, region=self.region)

    async def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        if self in self.cloud.proxies:
            self.cloud.proxies.remove(self)
        await self._tasks.cancel_all()
        self.media.stop_all()
        await self.ep.close()
        self.log.info("proxy.stopped", fqdn=self.fqdn)

    async def restart(self) -> None:
        """Reboot this host: its answered calls end without a word on the wire, each with its record
        and its gateway session released."""
        for call in self._calls_on_host():
            if call.end():
                for leg in call.legs:
                    self.cloud.dialogs.pop((leg.invite.call_id, leg.local_tag), None)
                self._release_session(call, everything=True)
                self._write_cdr(call, end_reason=EndReason.RESTARTED, ended_by="self")
                self.call_event("call.ended", call, status="restarted", end_reason=str(EndReason.RESTARTED),
                                ended_by="self")
        await self.stop()
        await self.start()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    # --- dispatch ----------------------------------------------------------------------------------
    def _interface(self, incoming: Incoming) -> str:
        """Trunk: accepted on the Direct Routing port, or a connection we opened (we open
        connections only toward gateways); clients: everything accepted on 443."""
        conn = incoming.source.connection
        if conn is None:
            return CLIENTS
        return TRUNK if conn.local[1] == self.ctx.topology.proxy_sbc_port or not conn.inbound else CLIENTS

    async def _on_request(self, incoming: Incoming) -> None:
        req: Request = incoming.request
        try:
            if req.to.tag is not None:
                return await self._in_dialog(incoming)
            if self._interface(incoming) == TRUNK:
                handler = {"OPTIONS": self._gateway_options, "INVITE": self._gateway_invite}.get(req.method)
            else:
                handler = {"REGISTER": self._register, "OPTIONS": self._client_options, "MESSAGE": self._message,
                           "INVITE": self._client_invite}.get(req.method)
            if handler is None:
                incoming.respond(405, headers=[("Allow", ALLOW + ", REGISTER, MESSAGE")])
                return None
            if req.method == "INVITE":  # a busy datacenter answers 503 with Retry-After [S2]
                return None if self.overloaded(incoming) else await self.set_up(handler(incoming))
            return await handler(incoming)
        except SipParseError as exc:
            incoming.respond(exc.status, exc.reason)
        except Exception as exc:  # a bug must answer 500 and be logged, never vanish
            self.log.error("proxy.error", method=req.method, call_id=req.call_id, error=f"{type(exc).__name__}: {exc}")
            if not _answered(incoming):
                incoming.respond(500, "Server Internal Error")
            raise
        return None

    # --- the Direct Routing interface: gateways --------------------------------------------------------
    def _check_gateway(self, incoming: Incoming) -> GatewayCheck:
        """[S2] for one request; a certificate that names no paired gateway at all closes the
        connection instead (the mutual-TLS acceptance rule: "TLS fails" [S2][S10])."""
        self._refresh(self._now())
        tls = incoming.source.tls
        names = None if tls is None or tls.certificate is None else tls.matches
        paired = [g.fqdn for g in self.ctx.tenant.gateways.values() if names is not None and names(g.fqdn)]
        if not paired:
            conn = incoming.source.connection
            certificate = list(tls.dns_names) or [tls.common_name] if tls is not None else []
            self.log.warning("tls.name_mismatch", side="server", peer=incoming.source.hostport,
                             certificate=certificate, detail="the client certificate names no PSTN gateway "
                             "paired with the tenant; connection closed")
            if conn is not None:
                conn.close("tls.name_mismatch")
            return GatewayCheck(None, 403, "Forbidden", "certificate names no paired gateway")
        check = check_gateway_request(self.ctx.tenant, incoming.request, names)
        if check.status is not None:
            self.log.warning("gateway.refused", method=incoming.request.method, contact=check.contact_host,
                             status=check.status, rule=check.rule, reason=check.detail, peer=incoming.source.hostport)
            incoming.respond(check.status, check.reason, headers=[("Warning", f'399 {self.fqdn} "{check.detail}"')])
        return check

    async def _gateway_options(self, incoming: Incoming) -> None:
        check = self._check_gateway(incoming)
        if check.gateway is None:
            return
        incoming.respond(200, headers=[("Allow", ALLOW), ("Contact", f"<sip:{self.fqdn}:{self.ctx.topology.proxy_sbc_port};transport=tls>")])
        uri = incoming.request.contacts[0].uri
        contact = f"{uri.host}:{uri.port or check.gateway.sip_signaling_port}"
        now = self._now()
        self._log_health(self.cloud.health.options_received(check.gateway.fqdn, self.region, now, contact=contact))
        self._wake.set()

    def _refresh(self, now: float) -> None:
        self._log_health(self.cloud.refresh_gateways(now))

    def _log_health(self, changes: list[Any]) -> None:
        for c in changes:
            self.log.info("gateway.health", gateway=c.gateway, state=str(c.new), old=None if c.old is None else str(c.old),
                          reason=c.reason, silent_s=c.silent_s, region=self.region)

    async def _timer_loop(self) -> None:
        """Health deadlines (demotion) and this region's OPTIONS toward the gateways [S2][S10]."""
        health = self.cloud.health
        while self.running:
            now = self._now()
            self._refresh(now)
            self._log_health(health.handle_timer(now))
            for probe in health.options_due(now, self.region):
                health.options_sent(probe.gateway, self.region, now)
                self._tasks.spawn(self._send_options(probe.gateway, probe.contact))
            self._wake.clear()
            deadline = health.next_deadline(region=self.region)
            timeout = None if deadline is None else max(0.0, deadline - self._now())
            # asyncio.wait, not wait_for: 3.11's wait_for can swallow a cancel that races the wake-up
            waiter = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({waiter}, timeout=timeout)
            finally:
                waiter.cancel()

    async def _send_options(self, gateway: str, contact: str) -> None:
        """The proxy's side of the OPTIONS exchange [S3][S10]: a gateway that does not answer it
        with 2xx is Inactive in the admin's view, with the failure as the reason."""
        host, _, port = contact.rpartition(":")
        uri = f"sip:{host}:{port};transport=tls"
        req = make_request("OPTIONS", uri, from_=f"<sip:{self.fqdn}:{self.ctx.topology.proxy_sbc_port}>;tag={new_tag(self.rng)}",
                           to=f"<{uri}>", call_id=new_call_id(self.rng, self.fqdn), cseq=1,
                           via=self._via(), contact=self._trunk_contact(), max_forwards=70)
        health = self.cloud.health
        try:
            resp = await self.ep.request(req, Target(host, int(port), "tls", tls_name=host)).final()
        except SipFailure as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            self.log.warning("gateway.options_failed", gateway=gateway, contact=contact, reason=reason, detail=str(exc))
            if self.running:
                self._log_health(health.probe_failed(gateway, self.region, self._now(), f"{exc} ({contact})"))
                self.peer_unreachable(host, self._calls_on_host())
            return
        if not self.running:
            return
        if resp.status >= 300:
            self.log.warning("gateway.options_failed", gateway=gateway, contact=contact, reason="response",
                             status=resp.status)
            self._log_health(health.probe_failed(gateway, self.region, self._now(),
                                                 f"answered {resp.status} {resp.reason} ({contact})"))
        elif resp.status >= 200:
            self._log_health(health.probe_answered(gateway, self.region, self._now()))

    def _via(self) -> str:
        return f"SIP/2.0/TLS {self.fqdn};branch={new_branch(self.rng)}"  # the endpoint writes the real sent-by

    def _trunk_contact(self, user: str | None = None) -> str:
        who = f"{user}@" if user else ""
        return f"<sip:{who}{self.fqdn}:{self.ctx.topology.proxy_sbc_port};transport=tls>"

    def _client_contact(self) -> str:
        return f"<sip:{self.fqdn}:{self.ctx.topology.proxy_client_port};transport=tls>"

    # --- the client interface: Teams clients and SBAs --------------------------------------------------
    async def _register(self, incoming: Incoming) -> None:
        req: Request = incoming.request
        now = self._now()
        conn = incoming.source.connection
        try:
            token = Token.parse(req.headers.get("Authorization"))
        except ValueError as exc:
            return self._refuse_register(incoming, 401, "Unauthorized", str(exc))
        if token.expired(now):
            return self._refuse_register(incoming, 401, "Unauthorized", f"token expired at {token.expires:g}",
                                         token.upn)
        aor = req.to.uri
        aor_text = f"{aor.user}@{aor.host}".lower() if isinstance(aor, SipUri) and aor.user else None
        if aor_text is not None and aor_text != token.upn:
            return self._refuse_register(incoming, 403, "Forbidden", f"token is for {token.upn}, To is {aor_text}",
                                         token.upn)
        if self.ctx.tenant.users.get(token.upn) is None:
            return self._refuse_register(incoming, 404, "Not Found", f"no user {token.upn} in the tenant", token.upn)
        expires = _expires(req)
        if expires == 0 or req.contact_star:
            gone = self.cloud.unregister(token.upn, conn)
            incoming.respond(200)
            if gone is not None:
                self.log.info("registrar.unbound", user=token.upn, contact=gone.contact, reason="expires=0")
            return None
        if not req.contacts:
            incoming.respond(200)  # a query (RFC 3261 §10.2.3): no bindings listed to keep things small
            return None
        contact = str(req.contacts[0].uri)
        self.cloud.register(Registration(token.upn, self.node, conn, contact, now, now + expires, token))
        incoming.respond(200, headers=[("Contact", f"<{contact}>;expires={expires}"), ("Expires", str(expires))])
        self.log.info("registrar.bound", user=token.upn, contact=contact, expires=expires,
                      conn=getattr(conn, "id", None))
        return None

    def _refuse_register(self, incoming: Incoming, status: int, reason: str, detail: str, user: str | None = None) -> None:
        headers = [("WWW-Authenticate", 'Bearer realm="drlab", error="invalid_token"')] if status == 401 else []
        incoming.respond(status, reason, headers=headers)
        self.log.warning("registrar.refused", user=user, status=status, reason=detail)

    def _connection_closed(self, conn: Connection, reason: str | None = None) -> None:
        """The endpoint says a connection closed: the clients registered over it are gone."""
        for r in self.cloud.unregister_connection(conn):
            self.log.info("registrar.unbound", user=r.upn, contact=r.contact, reason=f"connection closed: {reason}")
        if self.running:
            self.connection_lost(conn, self._calls_on_host())

    async def _client_options(self, incoming: Incoming) -> None:
        incoming.respond(200, headers=[("Allow", ALLOW + ", REGISTER, MESSAGE")])

    async def _message(self, incoming: Incoming) -> None:
        req: Request = incoming.request
        user = req.uri.user if isinstance(req.uri, SipUri) else None
        ctype = (req.content_type or "").lower()
        tls = incoming.source.tls
        if user == SYNC_URI_USER:
            if ctype != SYNC_CONTENT_TYPE:
                incoming.respond(415, headers=[("Accept", SYNC_CONTENT_TYPE)])
                return
            names = tuple(tls.dns_names) if tls is not None and tls.certificate is not None else None
            reply = self.cloud.sync_reply(req.body, names)
        elif user == CDR_URI_USER:
            if ctype != CDR_CONTENT_TYPE:
                incoming.respond(415, headers=[("Accept", CDR_CONTENT_TYPE)])
                return
            uploader = tls.dns_names[0] if tls is not None and tls.certificate is not None and tls.dns_names else None
            reply = self.cloud.cdr_upload(req.body, uploader)
        else:
            incoming.respond(404, "No such service")
            return
        headers = [("Content-Type", reply.content_type)] if reply.content_type else []
        incoming.respond(reply.status, reply.reason, headers=headers, body=reply.body)
        if reply.event:
            (self.log.info if reply.status < 300 else self.log.warning)(reply.event, **reply.fields)

    # --- calls: common parts -------------------------------------------------------------------------
    def _call_fields(self, call: Call) -> dict[str, object]:
        return {"call_id": call.call_id, "caller": call.caller, "callee": call.callee, "path": "cloud",
                "direction": str(call.direction)}

    def call_event(self, name: str, call: Call, **extra: Any) -> None:
        """`call.*` with the contract's fields (status None until there is one)."""
        level = self.log.warning if name.endswith(("_failed", "_unreachable")) else self.log.info
        level(name, **self._call_fields(call), **{"status": None, **extra})

    def endpoint_of(self, leg: Leg) -> SipEndpoint | None:
        return leg.host.ep

    def contact_on(self, leg: Leg) -> str:
        """Our Contact toward a leg: the trunk interface toward gateways, 443 toward clients, on
        the host that carries the leg."""
        topo = self.ctx.topology
        port = topo.proxy_sbc_port if leg.kind == TRUNK else topo.proxy_client_port
        return f"<sip:{leg.host.fqdn}:{port};transport=tls>"

    def _fail(self, call: Call, result: ResultCode, *, status: int | None = None, reason: str | None = None,
              detail: str = "") -> None:
        """The call ends before answer: answer the caller (unless it cancelled), write the CDR."""
        if not call.end():
            return
        status = status or result.sip_code
        if call.a.incoming is None:  # a failed transfer: the transferee is left alone, so hang it up
            self.cloud.dialogs.pop((call.a.invite.call_id, call.a.local_tag), None)
            self._tasks.spawn(self.bye(call.a))
            self._notify_referrer(call, status, reason or result.phrase, final=True)
        elif not call.cancelled.is_set() and not _answered(call.a.incoming):
            call.a.incoming.respond(status, reason or result.phrase, to_tag=call.a.local_tag)
        self._release_session(call, everything=True)
        end_reason = default_end_reason(result, answered=False)
        ended_by = "caller" if end_reason is EndReason.CANCELLED else "callee" if result.ms_code >= 560000 else "self"
        self.call_event("call.ended", call, status=status, result=result.ms_code, detail=detail,
                        end_reason=str(end_reason), ended_by=ended_by)
        self._write_cdr(call, result, ended_by=ended_by)

    def _media_toward_gateway(self, call: Call, gateway: Gateway, offer: bytes) -> bytes:
        """Without media bypass the media processor anchors the call's media [S28]: open its relay
        (the offer toward the gateway then names it); with bypass the offer passes unchanged."""
        if gateway.media_bypass:
            return offer
        self.open_relay(call)
        return self.media_body(call, offer, "b")

    def _write_cdr(self, call: Call, result: ResultCode | None = None, *, end_reason: EndReason | None = None,
                   ended_by: str | None = None) -> None:
        self.end_media(call)
        if call.draft is None:
            return  # a Teams-to-Teams call is no Direct Routing call: no DR call record
        cdr = call.draft.finish(self._now(), result, end_reason=end_reason, ended_by=ended_by)
        self.cloud.record(cdr)
        self.log.info("cdr.record", **{k: v for k, v in cdr.to_dict().items() if k != "node"}, writer=cdr.node)

    def _release_session(self, call: Call, *, everything: bool = False) -> None:
        """End the session of the gateway attempt; with `everything`, a transferee's kept one too."""
        if call.session is not None:
            fqdn, max_sessions = call.session
            call.session = None
            self._log_sessions(self.cloud.sessions.end(fqdn, max_sessions=max_sessions, now=self._now()))
        if everything and call.kept_session is not None:
            fqdn, max_sessions = call.kept_session
            call.kept_session = None
            self._log_sessions(self.cloud.sessions.end(fqdn, max_sessions=max_sessions, now=self._now()))

    def _log_sessions(self, events: list[Any]) -> None:
        for e in events:
            self.log.warning(e.event, **e.fields()) if e.event != "gateway.sessions_normal" else \
                self.log.info(e.event, **e.fields())

    def _admit(self, call: Call, gateway: Gateway) -> bool:
        admitted, events = self.cloud.sessions.start(gateway.fqdn, max_sessions=gateway.max_concurrent_sessions,
                                                     now=self._now())
        self._log_sessions(events)
        if admitted:
            call.session = (gateway.fqdn, gateway.max_concurrent_sessions)
        return admitted

    def _bridge(self, call: Call, leg_b: Leg, response: Response) -> None:
        """The far leg answered: ACK it, answer the caller with its SDP, remember both dialogs."""
        taken = self.take_answer(call, leg_b, leg_b.invite, response, local_contact=self.contact_on(leg_b),
                                 sent_by=leg_b.host.fqdn, transport="TLS")
        call.b = leg_b
        if not taken:
            self._fail(call, result_for("caller_cancelled"))
            return
        a = call.a
        if a.incoming is None:  # a transfer: the transferee now talks to the target
            self._tasks.spawn(self.reoffer(a, response.body))
            self._notify_referrer(call, response.status, response.reason or "OK", final=True)
            call.answer()
            self.watch_media(call)
        else:
            a.dialog = Dialog.from_uas_request(a.invite, a.local_tag, local_contact=self.contact_on(a),
                                               sent_by=self.fqdn, transport="TLS")
            a.sdp = a.invite.body
            self.answer_caller(call, response)
        self.cloud.dialogs[(a.invite.call_id, a.local_tag)] = (call, a)
        self.cloud.dialogs[(leg_b.invite.call_id, leg_b.local_tag)] = (call, leg_b)
        if call.draft is not None:
            call.draft.answered(self._now())
        self.call_event("call.answered", call, status=200)

    async def _hang_up(self, call: Call, by: Leg | None, end_reason: EndReason = EndReason.NORMAL) -> None:
        """End an answered call: BYE from leg `by`, or this node's decision (`by` None, e.g. the
        media timeout); end the other legs, close the record, release the gateway session."""
        answered = call.state is CallState.ANSWERED
        if not call.end():  # e.g. the transferor leaving after its REFER: nothing else to end
            if by is not None:
                self.cloud.dialogs.pop((by.invite.call_id, by.local_tag), None)
                if by.dialog is not None:
                    by.dialog.terminate()  # no NOTIFY after its BYE
            return
        if not answered:  # the transferee left while the target rang
            self._notify_referrer(call, 487, "Request Terminated", final=True)
        for leg in call.legs:
            self.cloud.dialogs.pop((leg.invite.call_id, leg.local_tag), None)
        if by is not None:
            by.dialog.terminate()
        self._release_session(call, everything=True)
        ended_by = "self" if by is None else "caller" if by is call.a else "callee"
        self._write_cdr(call, end_reason=end_reason, ended_by=ended_by)
        byes = await self.bye_all(call, but=by)
        self.call_event("call.ended", call, status="bye", by=None if by is None else ended_by,
                        end_reason=str(end_reason), ended_by=ended_by, byes=byes)

    async def end_silent(self, call: Call, leg: Leg) -> None:
        await self._hang_up(call, None, EndReason.MEDIA_TIMEOUT)

    def _calls_on_host(self) -> list[Call]:
        """The calls with a leg on this host, each once, in the order they were answered."""
        calls: list[Call] = []
        for call, _leg in self.cloud.dialogs.values():
            if call not in calls and any(leg.host is self for leg in call.legs):
                calls.append(call)
        return calls

    async def _in_dialog(self, incoming: Incoming) -> None:
        req: Request = incoming.request
        entry = self.cloud.dialogs.get((req.call_id, req.to.tag))
        if entry is None:
            incoming.respond(481, "Call/Transaction Does Not Exist")
            return
        call, leg = entry
        rejected = leg.dialog.receive_request(req)
        if rejected is not None:
            incoming.respond(rejected)
            return
        if req.method == "BYE":
            incoming.respond(200)
            await self._hang_up(call, leg)
            return
        if req.method == "OPTIONS":
            incoming.respond(200, headers=[("Allow", ALLOW)])
            return
        if req.method == "REFER":
            return self._refer(incoming, call, leg)
        if req.method not in ("INVITE", "UPDATE", "INFO"):
            incoming.respond(405, headers=[("Allow", ALLOW)])
            return
        await self.relay_in_dialog(call, leg, incoming)

    # --- blind transfer: the proxy as referee ------------------------------------------------------------
    def _refer(self, incoming: Incoming, call: Call, leg: Leg) -> None:
        accepted = accept_refer(incoming, call, leg)
        if accepted is None:
            return
        transferee, target = accepted
        self.call_event("call.transferred", call, status=202, target=str(target),
                         by="caller" if leg is call.a else "callee")
        self._tasks.spawn(self._transfer(call, transferee, target, leg))

    def _notify_referrer(self, call: Call, status: int, reason: str, *, final: bool) -> None:
        """NOTIFY the transferor of the transfer's progress (RFC 3515 §2.4.4), if the call comes from one."""
        if call.transfer is not None:
            call.transfer.notify(status, reason, final=final)

    async def _transfer(self, call: Call, transferee: Leg, target: Any, transferor: Leg) -> None:
        """The first call ends (normal clearing); the transferee is connected to `target`."""
        call.end()
        kept = call.session if call.session is not None else call.kept_session
        call.session = call.kept_session = None  # the transferee's trunk session goes on with it
        by = "caller" if transferor is call.a else "callee"
        self.call_event("call.ended", call, status="transferred", end_reason=str(EndReason.TRANSFERRED), ended_by=by)
        self._write_cdr(call, end_reason=EndReason.TRANSFERRED, ended_by=by)
        party = call.caller if transferee is call.a else call.callee
        a = Leg(transferee.kind, host=transferee.host, target=transferee.target, invite=transferee.invite,
                local_tag=transferee.local_tag, dialog=transferee.dialog, sdp=transferee.sdp)
        dialed = number_of(target) or ""
        new = Call(new_call_id(self.rng, self.fqdn), party, dialed, Direction.OUTBOUND, a, user=call.user,
                   kept_session=kept)
        new.transfer = TransferProgress(transferor, self.rng, self.send_on_leg, self.log, self._tasks.spawn)
        self._notify_referrer(new, 100, "Trying", final=False)
        self.cloud.dialogs[(a.invite.call_id, a.local_tag)] = (new, a)
        user = self.ctx.tenant.users.get((call.user or "").lower())
        if user is None:
            return self._fail(new, result_for("callee_not_registered"), detail="no Teams user to route the transfer")
        callee = self._teams_callee(user, target, dialed)
        if callee is None:
            return await self._route_out(new, user, dialed)
        new.callee = callee.upn
        if a.kind == TRUNK:
            new.direction = Direction.INBOUND
            new.draft = CdrDraft(new.call_id, party, callee.phone_number or callee.upn, Direction.INBOUND,
                                 CallPath.CLOUD, self.fqdn, self._now(), gateway=kept[0] if kept else None,
                                 user=callee.upn)
        else:
            new.direction = Direction.INTERNAL
        self.call_event("call.started", new, user=callee.upn)
        return await self._fork(new, callee.upn)

    # --- inbound: gateway -> Teams user ---------------------------------------------------------------
    def _gateway_target(self, gateway: Gateway) -> Target:
        return Target(gateway.fqdn, gateway.sip_signaling_port, "tls", tls_name=gateway.fqdn)

    async def _gateway_invite(self, incoming: Incoming) -> None:
        check = self._check_gateway(incoming)
        if check.gateway is None:
            return
        gw = check.gateway
        req: Request = incoming.request
        # [S2]: 100 Trying on the first INVITE — the endpoint's INVITE server transaction sends it (RFC 3261 §17.2.1)
        called = number_of(req.uri) or ""
        calling = number_of(req.from_.uri)
        decision = route_inbound(self.ctx.tenant, gw.fqdn, called, calling)
        a = Leg(TRUNK, host=self, target=self._gateway_target(gw), invite=req, local_tag=new_tag(self.rng),
                incoming=incoming)
        call = Call(req.call_id, decision.calling_number or calling or "anonymous", decision.called_number,
                    Direction.INBOUND, a, user=decision.user)
        call.draft = CdrDraft(req.call_id, call.caller, call.callee, Direction.INBOUND, CallPath.CLOUD, self.fqdn,
                              self._now(), gateway=gw.fqdn, user=decision.user)
        self.watch_cancel(call)
        self._media_toward_gateway(call, gw, b"")
        self.call_event("call.started", call, gateway=gw.fqdn, user=decision.user,
                      reasons=list(decision.reasons))
        if decision.user is None:
            return self._fail(call, result_for("user_not_found"), detail=decision.reasons[-1])
        if decision.lbr is not None and not decision.lbr.allowed:  # [S21]: not delivered to the endpoint
            return self._fail(call, result_for("lbr_not_delivered"), detail=decision.lbr.reason)
        if not self._admit(call, gw):
            return self._fail(call, result_for("max_concurrent_sessions"), detail=f"{gw.fqdn} at MaxConcurrentSessions")
        await self._fork(call, decision.user)
        return None

    # --- Teams user's clients (inbound calls and Teams-to-Teams calls) ----------------------------------
    async def _fork(self, call: Call, upn: str) -> None:
        """Ring every signed-in client of `upn` at once; the first 2xx wins, the others are cancelled."""
        regs = [r for r in self.cloud.registrations_of(upn, self._now()) if self._proxy_named(r.proxy) is not None]
        if not regs:
            return self._fail(call, result_for("callee_not_registered"), detail=f"{upn} has no signed-in client")
        attempts: dict[asyncio.Future[Response], tuple[Any, Leg]] = {}
        for reg in regs:
            proxy = self._proxy_named(reg.proxy)
            tx, leg = proxy._client_leg(call, reg, upn)
            attempts[asyncio.ensure_future(tx.final())] = (tx, leg)
        cancel_wait = asyncio.ensure_future(call.cancelled.wait())
        failures: list[Response] = []
        try:
            pending = set(attempts)
            while pending:
                done, _ = await asyncio.wait(pending | {cancel_wait}, return_when=asyncio.FIRST_COMPLETED)
                if cancel_wait in done:
                    for fut in pending:
                        self._abandon(attempts[fut][0], fut, attempts[fut][1])
                    return self._fail(call, result_for("caller_cancelled"))
                for fut in done:
                    pending.discard(fut)
                    try:
                        resp = fut.result()
                    except SipFailure as exc:
                        self.call_event("call.client_unreachable", call, user=upn, reason=str(exc))
                        continue
                    if 200 <= resp.status < 300:
                        for other in pending:
                            self._abandon(attempts[other][0], other, attempts[other][1])
                        return self._bridge(call, attempts[fut][1], resp)
                    failures.append(resp)
        finally:
            cancel_wait.cancel()
        if not failures:
            return self._fail(call, result_for("callee_not_registered"), detail=f"no client of {upn} could be reached")
        best = _best_failure(failures)
        return self._fail(call, result_from_client(best.status, best.reason or ""), status=best.status, reason=best.reason)

    def _client_leg(self, call: Call, reg: Registration, upn: str) -> tuple[Any, Leg]:
        """Send the INVITE toward one registered client over its connection (on this host)."""
        conn = reg.connection
        tag = new_tag(self.rng)
        a = call.a.invite
        offer = self.media_body(call, call.a.sdp or a.body, "b")
        invite = make_request(
            "INVITE", reg.contact, from_=f"<sip:{call.caller}@{self.fqdn};user=phone>;tag={tag}", to=f"<sip:{upn}>",
            call_id=new_call_id(self.rng, self.fqdn), cseq=1, via=self._via(), contact=self._client_contact(),
            max_forwards=onward_max_forwards(a), extra_headers=[("Allow", ALLOW)], body=offer,
            content_type="application/sdp" if offer else None)
        target = Target(conn.remote[0], conn.remote[1], "tls", connection=conn)
        leg = Leg(CLIENT, host=self, target=target, invite=invite, local_tag=tag)
        self.log.info("leg.placed", call_id=call.call_id, leg_call_id=invite.call_id, peer=upn)
        tx = self.ep.request(invite, target, on_provisional=lambda r: self.relay_provisional(call, r))
        return tx, leg

    def _proxy_named(self, node: str) -> TeamsProxy | None:
        return next((p for p in self.cloud.proxies if p.node == node and p.running), None)

    def _abandon(self, tx: Any, final: asyncio.Future[Response], leg: Leg) -> None:
        """Give up on an attempt still in progress: CANCEL it (RFC 3261 §9.1: sent once a provisional came),
        and should a 2xx still arrive, ACK and BYE it so the far end is not left ringing/up."""
        tx.cancel()

        async def reap() -> None:
            try:
                resp = await final
            except Exception:  # a failed abandoned attempt is no news
                return
            if 200 <= resp.status < 300:
                leg.dialog = Dialog.from_uac_response(leg.invite, resp, local_contact=self.contact_on(leg),
                                                      sent_by=leg.host.fqdn, transport="TLS")
                self.ack_on_leg(leg, leg.invite)
                await self.bye(leg)

        self._tasks.spawn(reap())

    # --- outbound: Teams client -> PSTN (or another Teams user) -------------------------------------------
    async def _client_invite(self, incoming: Incoming) -> None:
        req: Request = incoming.request
        now = self._now()
        conn = incoming.source.connection
        reg = self.cloud.registration_on(conn, now)
        upn = reg.upn if reg is not None else None
        if upn is None:  # not signed in over this connection: the INVITE must carry the token
            try:
                token = Token.parse(req.headers.get("Authorization"))
            except ValueError as exc:
                incoming.respond(401, headers=[("WWW-Authenticate", 'Bearer realm="drlab"')])
                self.log.warning("call.refused", call_id=req.call_id, status=401, reason=str(exc))
                return
            if token.expired(now):
                incoming.respond(401, headers=[("WWW-Authenticate", 'Bearer realm="drlab", error="invalid_token"')])
                self.log.warning("call.refused", call_id=req.call_id, status=401, reason="token expired")
                return
            upn = token.upn
        user = self.ctx.tenant.users.get(upn.lower())
        if user is None:
            incoming.respond(403, "User Not In Tenant")
            self.log.warning("call.refused", call_id=req.call_id, status=403, reason=f"no user {upn}")
            return
        dialed = number_of(req.uri) or ""
        a = Leg(CLIENT, host=self, target=Target(conn.remote[0], conn.remote[1], "tls", connection=conn), invite=req,
                local_tag=new_tag(self.rng), incoming=incoming)
        call = Call(req.call_id, user.phone_number or user.upn, dialed, Direction.OUTBOUND, a, user=user.upn)
        self.watch_cancel(call)
        callee = self._teams_callee(user, req.uri, dialed)
        if callee is not None:
            call.callee, call.direction = callee.upn, Direction.INTERNAL
            self.call_event("call.started", call, user=user.upn)
            await self._fork(call, callee.upn)
            return
        await self._route_out(call, user, dialed)

    def _teams_callee(self, user: Any, uri: Any, dialed: str) -> Any:
        """Another Teams user, by UPN (`sip:dave@contoso.com`) or by number after the caller's dial plan."""
        tenant = self.ctx.tenant
        if isinstance(uri, SipUri) and uri.user and not uri.user.lstrip("+").replace(";", "").isdigit():
            by_upn = tenant.users.get(f"{uri.user}@{uri.host}".lower())
            if by_upn is not None:
                return by_upn
        if not dialed:
            return None
        return tenant.user_by_number(normalize(tenant, user, dialed).number)

    async def _route_out(self, call: Call, user: Any, dialed: str) -> None:
        now = self._now()
        self._refresh(now)
        # where the user calls from: the client's address (a transferred trunk leg says nothing of it)
        client = call.a.target.host if call.a.kind == CLIENT and call.a.target is not None else None
        decision = select_route(self.ctx.tenant, user, dialed, health=self.cloud.routing_health(now, self.region),
                                demoted=self.cloud.demoted_mode, rng=self.rng,  # type: ignore[arg-type]
                                client_ip=client if client is not None and _is_ip(client) else None)
        call.callee = decision.normalized
        self.log.info("route.decision", user=user.upn, dialed=dialed, normalized=decision.normalized,
                      gateways=list(decision.gateways), reasons=list(decision.reasons), call_id=call.call_id,
                      emergency=decision.emergency is not None,
                      caller_id=decision.caller_id.number if decision.caller_id is not None else None,
                      lbr=decision.lbr_json())
        call.draft = CdrDraft(call.call_id, call.caller, call.callee, Direction.OUTBOUND, CallPath.CLOUD, self.fqdn,
                              now, user=user.upn)
        self.call_event("call.started", call, user=user.upn)
        if not decision.has_route and decision.lbr is not None and not decision.lbr.allowed:
            return self._fail(call, result_for("lbr_refused"), detail=decision.reasons[-1])  # [S21]
        if not decision.has_route:
            condition = "no_matching_route" if decision.usage is None else "all_gateways_failed"
            return self._fail(call, result_for(condition), detail=decision.reasons[-1])
        # the decision's failover order: healthy gateways of every route by priority, then the
        # demoted ones [S6][S7]; a gateway's plan (translation, failover settings) is per gateway
        plans = {g.fqdn: g for r in reversed(decision.routes) for g in reversed(r.gateways)}
        attempts = GatewayAttempts([(fqdn, FailoverRule(plans[fqdn].failover_response_codes,
                                                        plans[fqdn].failover_time_seconds))
                                    for fqdn in decision.gateways])
        last: Outcome | None = None
        while (fqdn := attempts.next_gateway(self._now())) is not None:
            plan = plans[fqdn]
            outcome = await self._try_gateway(call, plan, attempts)
            if outcome.kind == "answered":
                call.draft.gateway = plan.fqdn
                return self._bridge(call, outcome.leg, outcome.response)  # type: ignore[arg-type]
            if outcome.kind == "cancelled":
                return self._fail(call, result_for("caller_cancelled"))
            if outcome.kind == "final":
                call.draft.gateway = plan.fqdn
                resp = outcome.response
                return self._fail(call, outcome.result, status=resp.status, reason=resp.reason)  # type: ignore[arg-type,union-attr]
            last = outcome
        assert last is not None and last.result is not None
        if last.response is not None:
            return self._fail(call, last.result, status=last.response.status, reason=last.response.reason,
                              detail=last.detail)
        return self._fail(call, last.result, detail=last.detail)

    def _datacenters(self) -> list[TeamsProxy]:
        """This host first, then the other running proxy hosts, `proxy_datacenter_attempts` in all [S5][S7]."""
        others = [p for p in self.cloud.proxies if p is not self and p.running]
        return ([self] + others)[: self.settings.proxy_datacenter_attempts]

    async def _try_gateway(self, call: Call, plan: GatewayPlan, attempts: GatewayAttempts) -> Outcome:
        """The attempt on one gateway: from this host, then from the other datacenters while the
        gateway cannot be reached from here [S5]; its failover timer runs across them."""
        gw = self.cloud.gateway(plan.fqdn)
        if gw is None:  # removed from the tenant since the decision
            attempts.unreachable(self._now())
            return Outcome("failover", result=result_for("all_gateways_failed"), detail=f"{plan.fqdn} is gone")
        if not self._admit(call, gw):
            attempts.unreachable(self._now())
            self.log.warning("route.attempt", call_id=call.call_id, gateway=gw.fqdn, outcome="session_limit", status=503)
            return Outcome("failover", result=result_for("max_concurrent_sessions"), detail=f"{gw.fqdn} at limit")
        outcome = Outcome("network")
        for n, proxy in enumerate(self._datacenters(), 1):
            outcome = await proxy._gateway_attempt(call, plan, gw, attempts)
            self.log.info("route.attempt", call_id=call.call_id, gateway=gw.fqdn, datacenter=proxy.node,
                          attempt=n, outcome=outcome.kind, detail=outcome.detail,
                          status=outcome.response.status if outcome.response is not None else None)
            if outcome.kind != "network":
                break
        if outcome.kind == "network":
            attempts.unreachable(self._now())
            outcome = Outcome("failover", result=result_for("all_gateways_failed"),
                              detail=f"{gw.fqdn} unreachable from {n} datacenter(s): {outcome.detail}")
        if outcome.kind != "answered":
            self._release_session(call)
        return outcome

    def _pstn_invite(self, call: Call, plan: GatewayPlan, gw: Gateway, tag: str) -> Request:
        """The INVITE toward a gateway: numbers after its outbound translation rules [S19]; the
        From is the caller ID the user's caller ID policy presents, anonymous with `Privacy: id`
        and the user's own number asserted when it withholds it (RFC 3325 §9.1); with ForwardPai,
        P-Asserted-Identity (tel URI of the caller ID presented, or of the user's own number when
        it is withheld, and the user's SIP address) + Privacy: id and an anonymous From
        (RFC 3325, RFC 5379) as New-CsOnlinePSTNGateway documents it [S4]. An emergency call
        to a gateway with PidfLoSupported carries the location as PIDF-LO (RFC 6442) [S22]."""
        called = plan.called_number
        own = plan.asserted_number or call.caller
        upn = call.draft.user if call.draft is not None else None
        uri = f"sip:{called}@{gw.fqdn}:{gw.sip_signaling_port};user=phone;transport=tls"
        from_ = f"<sip:{plan.calling_number or call.caller}@{self.fqdn};user=phone>;tag={tag}"
        extra: list[tuple[str, str]] = [("Allow", ALLOW)]
        if gw.forward_pai:
            from_ = f"{ANONYMOUS_FROM};tag={tag}"
            extra += [("P-Asserted-Identity", f"<tel:{plan.calling_number or own}>" + (f", <sip:{upn}>" if upn else "")),
                      ("Privacy", "id")]
        elif plan.privacy:
            from_ = f"{ANONYMOUS_FROM};tag={tag}"
            extra += [("P-Asserted-Identity", f"<tel:{own}>"), ("Privacy", "id")]
        offer = self._media_toward_gateway(call, gw, call.a.sdp or call.a.invite.body)
        content_type = "application/sdp" if offer else None
        if plan.pidf_lo is not None and offer:
            cid = f"{new_tag(self.rng)}@{self.fqdn}"
            document = pidf_lo(f"pres:{upn or own}", plan.pidf_lo.civic)
            content_type, offer = multipart_mixed([BodyPart(SDP_CONTENT_TYPE, offer),
                                                   BodyPart(PIDF_CONTENT_TYPE, document, cid)], new_tag(self.rng))
            extra += [("Geolocation", f"<cid:{cid}>"), ("Geolocation-Routing", "yes")]
        return make_request("INVITE", uri, from_=from_, to=f"<sip:{called}@{gw.fqdn};user=phone>",
                            call_id=new_call_id(self.rng, self.fqdn), cseq=1, via=self._via(),
                            contact=self._trunk_contact(), max_forwards=onward_max_forwards(call.a.invite),
                            extra_headers=extra, body=offer, content_type=content_type)

    async def _gateway_attempt(self, call: Call, plan: GatewayPlan, gw: Gateway, attempts: GatewayAttempts) -> Outcome:
        """One INVITE to one gateway from this host, under the gateway's failover rule [S4][S5]."""
        tag = new_tag(self.rng)
        invite = self._pstn_invite(call, plan, gw, tag)
        target = self._gateway_target(gw)
        leg = Leg(TRUNK, host=self, target=target, invite=invite, local_tag=tag)
        self.log.info("leg.placed", call_id=call.call_id, leg_call_id=invite.call_id, peer=gw.fqdn)
        progressed = asyncio.Event()
        live = True  # a provisional of an INVITE given up on is no news

        def on_provisional(resp: Response) -> None:
            if live and attempts.response(resp.status, self._now()).action is Action.RELAY_PROVISIONAL:
                progressed.set()  # the failover timer has stopped, failover by code is off
                self.relay_provisional(call, resp)

        tx = self.ep.request(invite, target, on_provisional=on_provisional)
        final = asyncio.ensure_future(tx.final())
        waits = [asyncio.ensure_future(call.cancelled.wait()), asyncio.ensure_future(progressed.wait())]
        try:
            deadline = attempts.timer_deadline
            timeout = None if deadline is None else max(0.0, deadline - self._now())
            done, _ = await asyncio.wait({final, *waits}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not done and deadline is not None:
                # the loop may wake a hair before the deadline: the wake-up is the deadline (as aioquic)
                if attempts.timer_fired(max(deadline, self._now())).cancel:
                    self._abandon(tx, final, leg)
                    return Outcome("failover", result=result_for("failover_timer_expired"),
                                   detail=f"no 180/183/200 within FailoverTimeSeconds={plan.failover_time_seconds}")
            if not final.done() and not call.cancelled.is_set():
                await asyncio.wait({final, waits[0]}, return_when=asyncio.FIRST_COMPLETED)
            if call.cancelled.is_set() and not final.done():
                self._abandon(tx, final, leg)
                return Outcome("cancelled")
            try:
                resp = final.result()
            except TransportFailure as exc:
                return Outcome("network", detail=exc.reason)
            except TransactionTimeout as exc:
                return Outcome("network", detail=str(exc))
        finally:
            live = False
            for w in waits:
                w.cancel()
        decision = attempts.response(resp.status, self._now())
        if decision.action is Action.RELAY_FINAL and 200 <= resp.status < 300:
            return Outcome("answered", resp, leg=leg)
        result = result_from_gateway(resp.status, resp.reason or "")
        if decision.action is Action.RELAY_FINAL:
            return Outcome("final", resp, result)
        return Outcome("failover", resp, result, detail=f"{resp.status} is a FailoverResponseCode of {gw.fqdn}")


# --- small helpers ------------------------------------------------------------------------------------
def _answered(incoming: Incoming) -> bool:
    """Has a final response gone out on this server transaction?"""
    return bool(incoming.answered)


def _expires(req: Request) -> int:
    """RFC 3261 §10.2.1.1: the Contact's expires parameter, else Expires, else 3600."""
    if req.contacts:
        value = req.contacts[0].params.get("expires")
        if value is not None and value.isdigit():
            return int(value)
    header = req.headers.get("Expires")
    if header is not None and header.strip().isdigit():
        return int(header.strip())
    return DEFAULT_REGISTRATION_EXPIRES_S


def _best_failure(responses: list[Response]) -> Response:
    """RFC 3261 §16.7 step 6, simplified: a 6xx wins, else the lowest status."""
    six = [r for r in responses if r.status >= 600]
    return six[0] if six else min(responses, key=lambda r: r.status)
