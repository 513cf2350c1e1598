"""The Teams cloud behind the three proxy names: the state sip, sip2 and sip3 share (sans-I/O).

Microsoft runs one service behind `sip`, `sip2` and `sip3.pstnhub.microsoft.com` [S1]:
whichever name a client or an SBC reaches, it finds the same registrations, the same view of each
gateway's health and the same call log. So the lab's three `TeamsProxy` hosts share one
`TeamsCloud`, kept in `RoleContext.shared["teams_cloud"]` (`TeamsCloud.of(ctx)`); a cut link
still cuts every network path to it, because each proxy is its own host.

What it holds, and what each piece answers (nothing here does I/O or reads a clock):

    cloud = TeamsCloud.of(ctx)
    cloud.tenant                                  # the live tenant (`change` steps edit it)
    cloud.refresh_gateways(now)                   # tenant gateways -> GatewayHealth; -> [HealthChange]
    cloud.health / cloud.sessions / cloud.cdrs    # GatewayHealth, SessionCounter, CdrStore
    cloud.routing_health(now, region)             # {fqdn: healthy} for routing.select_route
    cloud.register(Registration(...))             # a client's REGISTER on some proxy connection
    cloud.unregister_connection(conn)             # the connection closed: its bindings go
    cloud.registrations_of(upn, now)              # live bindings, newest first
    reply = cloud.sync_reply(body, peer_names)    # the SBA sync MESSAGE -> CloudReply(status, ...)
    reply = cloud.cdr_upload(body)                # the SBA's CDR upload MESSAGE -> CloudReply
    cloud.proxies                                 # running proxies in start order (datacenter retry)
    cloud.dialogs                                 # (Call-ID, our tag) -> (call, leg) of calls up

The SBA sync (docs/CONTRACTS.md wire conventions): request body `{"sba": fqdn, "have_version": n}`,
answer 200 with the branch configuration JSON (`sba_cache.BranchConfig.to_json`), 403 for an SBA
the tenant does not list. The SBA is identified by the certificate it presented on the TLS connection when it
presented one (and then the body must name the same SBA), else by the body (docs/ASSUMPTIONS.md).
Versions: `sba_cache.BranchConfigSource` numbers each SBA's configuration, 1 for the first one
served, one more each time the content differs from the last one served.

The CDR upload: body `{"cdrs": [Cdr.to_dict(), ...]}`, answer 200 `{"accepted": [ids]}`; storing
is idempotent by CDR id (`CdrStore.ingest`), so a retried upload can never double a record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from simulator.roles.cdr import Cdr, CdrStore
from simulator.roles.context import RoleContext
from simulator.roles.gateway_health import GatewayHealth, Health, HealthChange, SessionCounter
from simulator.roles.sba_cache import BranchConfigSource, UnknownSba
from simulator.roles.settings import DEMOTED_SKIPPED, RoleSettings
from simulator.roles.token import Token
from simulator.tenant.model import Tenant

SHARED_KEY = "teams_cloud"
SYNC_CONTENT_TYPE = "application/vnd.drlab.sba-sync+json"
CDR_CONTENT_TYPE = "application/vnd.drlab.cdr+json"
SYNC_URI_USER = "sba-sync"
CDR_URI_USER = "sba-cdr"
#: RFC 3261 §10.2.1.1: a REGISTER with neither Expires header nor expires parameter asks for 3600 s
DEFAULT_REGISTRATION_EXPIRES_S = 3600


@dataclass
class Registration:
    """One signed-in Teams client: the connection the cloud reaches it over, at one proxy host."""

    upn: str
    proxy: str  # node name of the proxy host holding the connection
    connection: Any  # the endpoint's connection object (the client's TLS connection)
    contact: str  # the client's Contact URI (Request-URI of INVITEs toward it)
    registered_at: float
    expires_at: float
    token: Token | None = None

    def fields(self) -> dict[str, object]:
        return {"user": self.upn, "proxy": self.proxy, "contact": self.contact, "expires_at": self.expires_at}


@dataclass(frozen=True)
class CloudReply:
    """What a proxy answers to a cloud-service MESSAGE: status, phrase, JSON body, event fields."""

    status: int
    reason: str
    body: bytes = b""
    content_type: str | None = None
    event: str | None = None
    fields: dict[str, object] = field(default_factory=dict)


class TeamsCloud:
    def __init__(self, tenant: Tenant, settings: RoleSettings | None = None) -> None:
        self.tenant = tenant
        self.settings = settings or RoleSettings()
        self.health = GatewayHealth(self.settings)
        self.sessions = SessionCounter(self.settings)
        self.cdrs = CdrStore()
        self.proxies: list[Any] = []  # running TeamsProxy objects, in start order
        #: calls in progress, by (Call-ID, our tag) of each leg -> (call, leg): an in-dialog request
        #: may reach any host (a leg placed from sip2 after sip could not reach the SBC)
        self.dialogs: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._registrations: dict[str, list[Registration]] = {}
        self._sync_source = BranchConfigSource()  # per-SBA versions: one more when the content changes

    @classmethod
    def of(cls, ctx: RoleContext) -> TeamsCloud:
        """The lab's one cloud, created by the first proxy that asks."""
        cloud = ctx.shared.get(SHARED_KEY)
        if cloud is None:
            cloud = ctx.shared[SHARED_KEY] = cls(ctx.tenant, ctx.settings)
        return cloud

    # --- gateways ----------------------------------------------------------------------------------
    def refresh_gateways(self, now: float) -> list[HealthChange]:
        """Bring GatewayHealth in step with the live tenant: pairings added or removed, Enabled and
        SendSipOptions changed (Set-CsOnlinePSTNGateway while the lab runs)."""
        changes: list[HealthChange] = []
        known = set(self.health.gateways())
        for gw in self.tenant.gateways.values():
            fqdn = gw.fqdn.lower().rstrip(".")
            if fqdn not in known:
                changes += self.health.add_gateway(fqdn, now, enabled=gw.enabled, send_sip_options=gw.send_sip_options)
            else:
                changes += self.health.update_gateway(fqdn, now, enabled=gw.enabled,
                                                      send_sip_options=gw.send_sip_options)
            known.discard(fqdn)
        for fqdn in known:
            self.health.remove_gateway(fqdn)
        return changes

    def gateway(self, fqdn: str) -> Any:
        """The tenant's PSTN gateway object for `fqdn` (any case, trailing dot ignored), or None."""
        return self.tenant.find("gateway", fqdn.rstrip("."))

    def routing_health(self, now: float, region: str | None = None) -> dict[str, bool]:
        """{fqdn: healthy} for `select_route`: only an active gateway is healthy; demoted and
        inactive ones are tried last (or skipped, per `demoted_gateways`); disabled ones are the
        routing engine's business (it never offers them)."""
        return {fqdn: h in (Health.ACTIVE, Health.DISABLED) for fqdn, h in self.health.health_map(now, region).items()}

    @property
    def demoted_mode(self) -> str:
        """`select_route(demoted=...)` for the `demoted_gateways` setting."""
        return "excluded" if self.settings.demoted_gateways == DEMOTED_SKIPPED else "last"

    # --- registrations -----------------------------------------------------------------------------
    def register(self, registration: Registration) -> Registration | None:
        """Bind (or refresh) a client; a binding on the same connection is replaced. Returns the old one."""
        key = registration.upn.lower()
        bindings = self._registrations.setdefault(key, [])
        old = next((r for r in bindings if r.connection is registration.connection), None)
        if old is not None:
            bindings.remove(old)
        bindings.insert(0, registration)
        return old

    def unregister(self, upn: str, connection: Any) -> Registration | None:
        """REGISTER with Expires: 0 from `connection`."""
        bindings = self._registrations.get(upn.lower(), [])
        for r in bindings:
            if r.connection is connection:
                bindings.remove(r)
                return r
        return None

    def unregister_connection(self, connection: Any) -> list[Registration]:
        """A client connection closed: every binding over it goes (the cloud cannot reach it)."""
        gone = []
        for bindings in self._registrations.values():
            for r in [r for r in bindings if r.connection is connection]:
                bindings.remove(r)
                gone.append(r)
        return gone

    def registrations_of(self, upn: str, now: float) -> list[Registration]:
        """The user's live bindings, newest first; expired ones are dropped on the way."""
        bindings = self._registrations.get(upn.lower(), [])
        bindings[:] = [r for r in bindings if r.expires_at > now]
        return list(bindings)

    def registration_on(self, connection: Any, now: float) -> Registration | None:
        """The binding made over `connection` (who a client INVITE on it comes from)."""
        for bindings in self._registrations.values():
            for r in bindings:
                if r.connection is connection and r.expires_at > now:
                    return r
        return None

    # --- SBA sync service ----------------------------------------------------------------------------
    def sync_reply(self, body: bytes, peer_names: tuple[str, ...] | None = None) -> CloudReply:
        """Answer an SBA's sync request. `peer_names`: the DNS names of the certificate the SBA
        presented on its TLS connection, None when it presented none."""
        try:
            request = json.loads(body.decode("utf-8"))
            claimed = request["sba"]
            have = request.get("have_version")
            if not isinstance(claimed, str) or not claimed:
                raise ValueError("'sba' must be the SBA's FQDN")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            return CloudReply(400, "Bad sync request", event="cloud.sync_refused",
                              fields={"reason": f"expected JSON {{'sba': fqdn, 'have_version': n}}: {exc}"})
        claimed_key = claimed.lower().rstrip(".")
        if peer_names:
            names = {n.lower().rstrip(".") for n in peer_names}
            if claimed_key not in names:
                return CloudReply(403, "Certificate does not name the SBA", event="cloud.sync_refused",
                                  fields={"sba": claimed, "certificate": sorted(names),
                                          "reason": "the body names an SBA the client certificate does not"})
        try:
            config = self._sync_source.config_for(self.tenant, claimed_key)
        except UnknownSba as exc:
            return CloudReply(403, "SBA not listed in the tenant", event="cloud.sync_refused",
                              fields={"sba": claimed, "reason": str(exc)})
        return CloudReply(200, "OK", config.to_json(), SYNC_CONTENT_TYPE, "cloud.sync_served",
                          {"sba": config.sba, "version": config.version, "have_version": have,
                           "users": len(config.users), "identified_by": "certificate" if peer_names else "body"})

    # --- CDR upload intake -----------------------------------------------------------------------------
    def cdr_upload(self, body: bytes, uploader: str | None = None) -> CloudReply:
        try:
            request = json.loads(body.decode("utf-8"))
            batch = [Cdr.from_dict(d) for d in request["cdrs"]]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            return CloudReply(400, "Bad CDR upload", event="cloud.cdr_upload_refused",
                              fields={"uploader": uploader, "reason": f"expected JSON {{'cdrs': [CDR, ...]}}: {exc}"})
        new = sum(1 for c in batch if c.cdr_id not in self.cdrs.records)
        try:
            accepted = self.cdrs.ingest(batch)
        except ValueError as exc:  # the same id with other content: a bug upstream, refuse the batch
            return CloudReply(409, "CDR conflict", event="cloud.cdr_upload_refused",
                              fields={"uploader": uploader, "reason": str(exc)})
        payload = json.dumps({"accepted": accepted}, separators=(",", ":")).encode()
        return CloudReply(200, "OK", payload, CDR_CONTENT_TYPE, "cloud.cdr_upload",
                          {"uploader": uploader, "count": len(batch), "new": new, "duplicates": len(batch) - new})

    def record(self, cdr: Cdr) -> None:
        """A CDR the proxies wrote themselves."""
        self.cdrs.ingest([cdr])

