"""The test PKI and a TLS handshake harness.

    def test_x(lab_pki): lab_pki.identity(SBC), lab_pki.broken("expired", SBC), lab_pki.ca_path

`lab_pki` (tests/conftest.py) is issued once per test run by `issue_test_pki`: about a second of
RSA-2048 key generation (Direct Routing's ECDHE-RSA suites need RSA keys, and OpenSSL's security
level 2 needs 2048 bits).

`handshake(client_end, server_end, pki, ...)` upgrades both ends of one plain stream with
`simulator.net.tls.upgrade` and returns what each side saw; `loopback_streams()` gives such a
pair on real TCP, and the sim network can hand in its own pair to run the same tables.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.events import EventLog
from simulator.net.tls import HoldingProtocol, PeerInfo, TlsPolicy, TlsRefused, upgrade
from simulator.pki import VARIANTS, Identity, LabPki
from tests.support.net import Recorder  # application protocol: .received, .until(n), .lost

SBC = "sbc1.contoso.com"
PROXY = "sip.pstnhub.microsoft.com"
TEST_FQDNS = (SBC, PROXY, "sip2.pstnhub.microsoft.com", "sip3.pstnhub.microsoft.com", "sba1.contoso.com")


def issue_test_pki(directory: Path) -> LabPki:
    pki = LabPki(directory)
    pki.ensure(TEST_FQDNS, variants=())
    for variant in VARIANTS:  # the catalogue for the SBC and the proxy only: keys cost time
        for fqdn in (SBC, PROXY):
            pki.broken(variant, fqdn)
    return pki


# -- a handshake between two plain stream transports, on any network ------------------------


@dataclass
class Side:
    outcome: TlsRefused | PeerInfo
    transport: asyncio.Transport | None
    app: Recorder

    @property
    def reason(self) -> str | None:
        """The refusal reason, or None when this side's handshake and checks passed."""
        return self.outcome.reason if isinstance(self.outcome, TlsRefused) else None


@dataclass
class Handshake:
    client: Side
    server: Side
    log: EventLog

    def events(self, node: str) -> list[str]:
        return [r["event"] for r in self.log.records if r["node"] == node]


async def handshake(
    client_transport: asyncio.Transport,
    server_transport: asyncio.Transport,
    pki: LabPki,
    *,
    client_identity: Identity | None,
    server_identity: Identity | Mapping[str, Identity],
    client_policy: TlsPolicy | None = None,
    server_policy: TlsPolicy | None = None,
    peer_name: str | None = PROXY,
    server_peer_name: str | None = None,
    log: EventLog | None = None,
) -> Handshake:
    """Upgrade both ends of one plain stream at once (client node "sbc", server node "proxy")."""
    log = log or EventLog(asyncio.get_running_loop().time)

    async def run(transport: asyncio.Transport, **kw: object) -> Side:
        app = Recorder()
        try:
            tls_transport, peer = await upgrade(transport, app, trust=pki.ca_path, **kw)  # type: ignore[arg-type]
        except TlsRefused as refused:
            return Side(refused, None, app)
        return Side(peer, tls_transport, app)

    client, server = await asyncio.gather(
        run(client_transport, policy=client_policy or TlsPolicy(), identity=client_identity,
            server_side=False, peer_name=peer_name, log=log.logger(node="sbc")),
        run(server_transport, policy=server_policy or TlsPolicy(), identity=server_identity,
            server_side=True, peer_name=server_peer_name, log=log.logger(node="proxy")),
    )
    return Handshake(client, server, log)


@contextlib.asynccontextmanager
async def loopback_streams() -> AsyncIterator[tuple[asyncio.Transport, asyncio.Transport]]:
    """A real TCP connection on 127.0.0.1 (port 0): (client end, accepted end), neither read yet."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[HoldingProtocol] = loop.create_future()

    def accept() -> HoldingProtocol:
        protocol = HoldingProtocol()
        if not accepted.done():
            accepted.set_result(protocol)
        return protocol

    server = await loop.create_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client_transport, _ = await loop.create_connection(HoldingProtocol, "127.0.0.1", port)
    server_end = (await accepted).transport
    try:
        yield client_transport, server_end  # type: ignore[misc]
    finally:
        client_transport.abort()
        server_end.abort()  # type: ignore[union-attr]
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def network_streams(net: Any, client_host: str = SBC, server_host: str = PROXY,
                          port: int = 5061) -> AsyncIterator[tuple[asyncio.Transport, asyncio.Transport]]:
    """The same pair as `loopback_streams`, from a `simulator.net` Network (sim or real): a TCP
    connection client_host -> server_host:port, neither end read yet."""
    accepted: asyncio.Queue[asyncio.Transport] = asyncio.Queue()

    class Accept(HoldingProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            accepted.put_nowait(transport)  # type: ignore[arg-type]

    listener = await net.listen(server_host, port, "tcp", Accept)
    client_end, _ = await net.connect(client_host, server_host, port, HoldingProtocol)
    server_end = await accepted.get()
    try:
        yield client_end, server_end
    finally:
        client_end.abort()
        server_end.abort()
        listener.close()
