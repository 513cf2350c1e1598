"""The small value types of the endpoint API: where to send (Target), who sent (Peer), TLS
settings (TlsConfig), and the three ways a client transaction can fail."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simulator.net.tls import PeerInfo, TlsPolicy
from simulator.pki.store import Identity
from simulator.sip import SipUri, parse_uri

if TYPE_CHECKING:
    from simulator.endpoint.transport import Connection

TRANSPORTS = ("udp", "tcp", "tls")
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}


def check_transport(transport: str) -> str:
    name = str(transport).lower()
    if name not in TRANSPORTS:
        raise ValueError(f"bad SIP transport {transport!r}: expected one of {', '.join(TRANSPORTS)}")
    return name


@dataclass(frozen=True)
class TlsConfig:
    """TLS settings for a listener (server side) or for the connections an endpoint opens.

    `identity`: our certificate chain and key (a server may give {fqdn: Identity} to answer by
    SNI); None on a client that presents no certificate (a Teams client). `trust`: the CA file
    peers are verified against. `require_client_cert`: a server asks for and verifies a client
    certificate (Direct Routing's mutual TLS on 5061) or not (client-facing 443); it overrides
    `policy.mutual`."""

    identity: Identity | Mapping[str, Identity] | None = None
    trust: str | os.PathLike[str] | None = None
    policy: TlsPolicy = field(default_factory=TlsPolicy.direct_routing)
    require_client_cert: bool = True


@dataclass(frozen=True)
class Target:
    """Where a request goes: `host` (a name on the network, or an address), `port` (None: 5060,
    or 5061 for TLS), `transport`; `tls_name` is the name the server certificate must carry
    (default: `host`); `connection` sends over that open connection (e.g. one a client opened
    to us) instead of looking one up or opening one; `tls` overrides the endpoint's client
    TlsConfig for this target."""

    host: str
    port: int | None = None
    transport: str = "udp"
    tls_name: str | None = None
    connection: Connection | None = None
    tls: TlsConfig | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "transport", check_transport(self.transport))
        if self.port is None:
            object.__setattr__(self, "port", DEFAULT_PORTS[self.transport])

    @classmethod
    def from_uri(cls, uri: str | SipUri, **kw: Any) -> Target:
        """The next hop a SIP URI names (RFC 3263 without DNS SRV: host, port, transport
        parameter; sips: means TLS)."""
        parsed = parse_uri(uri) if isinstance(uri, str) else uri
        if not isinstance(parsed, SipUri):
            raise ValueError(f"cannot send to {uri!s}: not a sip:/sips: URI")
        params = {k.lower(): v for k, v in parsed.params.items()}
        transport = (params.get("transport") or ("tls" if parsed.scheme.lower() == "sips" else "udp")).lower()
        return cls(parsed.host, parsed.port, transport, **kw)


@dataclass(frozen=True, eq=False)
class Peer:
    """Where a message came from: the transport, the real source address and port, the
    connection it arrived on (None for UDP) and, over TLS, what the handshake established."""

    transport: str
    address: str
    port: int
    connection: Connection | None = None
    tls: PeerInfo | None = None

    @property
    def hostport(self) -> str:
        return f"{self.address}:{self.port}"


class SipFailure(Exception):
    """A client transaction ended without a final response."""


class TransactionTimeout(SipFailure):
    """Timer B (INVITE) or F (non-INVITE) fired: no final response within 64*T1 (§17.1)."""

    def __init__(self, method: str, timer: str, after: float) -> None:
        super().__init__(f"{method}: no final response (timer {timer}, {after:g} s)")
        self.method = method
        self.timer = timer
        self.after = after


class TransportFailure(SipFailure):
    """The request could not be carried: `reason` is `connect.refused`, `connect.timeout`,
    `connection.reset`, `send.failed`, or the `tls.*` name simulator.net.tls gave a refusal."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
