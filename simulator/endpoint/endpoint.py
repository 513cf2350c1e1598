"""SipEndpoint: the asyncio skin of the sans-I/O UA core, on either network.

One endpoint per node. It owns the listeners (UDP, TCP, TLS), the connections, the tasks of
the role's handlers and one timer handle re-armed to its `UserAgentCore`'s `next_deadline()`
on the loop's clock (virtual on sim), as aioquic's asyncio protocol drives its
QuicConnection. Every SIP rule is decided in simulator.sip (the core, its transactions and
dialogs); this module only moves bytes, futures and callbacks. See the package docstring for
the API and events.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import random
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from simulator.endpoint.transport import Connection, TransportLimits, UdpSocket, hostport
from simulator.endpoint.types import (
    DEFAULT_PORTS,
    Peer,
    SipFailure,
    Target,
    TlsConfig,
    TransactionTimeout,
    TransportFailure,
    check_transport,
)
from simulator.events import EventLog
from simulator.net.base import Listener, Network
from simulator.net.tls import HoldingProtocol, TlsRefused, upgrade
from simulator.sip import Request, Response, SipParseError
from simulator.sip.builders import make_cancel, make_response
from simulator.sip.transaction import (
    ClientTransaction,
    Deliver,
    Send,
    ServerTransaction,
    Terminated,
    Timeout,
    TimerSettings,
    TransactionStateError,
    TransportError,
)
from simulator.sip.uas_checks import answer_unparseable
from simulator.sip.user_agent import AckReceived, AckTimeout, Cancelled, RequestReceived, UserAgentCore

RequestHandler = Callable[["Incoming"], Awaitable[None] | None]


@dataclass(eq=False)
class Hop:
    """Where one message goes: a connection (streams) or a UDP socket and address."""

    transport: str
    address: str
    port: int
    connection: Connection | None = None
    socket: UdpSocket | None = None


def branch(rng: random.Random) -> str:
    """A Via branch: the magic cookie and 64 random bits from the endpoint's seeded RNG
    (RFC 3261 §8.1.1.7); one getrandbits call instead of a draw per character."""
    return f"z9hG4bK{rng.getrandbits(64):016x}"


def summary(message: Request | Response) -> str:
    if isinstance(message, Request):
        return f"{message.method} {message.uri_text}"
    return f"{message.status} {message.reason}"


# -- the two faces a role sees: a client transaction, and an incoming request ---------------


class ClientTx:
    """A request on its way: `await tx.final()` for the final response; `tx.cancel()`."""

    def __init__(self, endpoint: SipEndpoint, request: Request, target: Target,
                 on_provisional: Callable[[Response], Any] | None) -> None:
        self.endpoint = endpoint
        self.request = request
        self.target = target
        self.on_provisional = on_provisional
        self.provisional: list[Response] = []
        self.hop: Hop | None = None
        self.transaction: ClientTransaction | None = None
        self._final: asyncio.Future[Response] = endpoint.loop.create_future()
        self._cancel_pending = False
        self.cancel_tx: ClientTx | None = None

    @property
    def done(self) -> bool:
        return self._final.done()

    def final(self) -> asyncio.Future[Response]:
        """Await it for the final response; raises TransactionTimeout or TransportFailure.
        The future itself, not a coroutine: `shield(tx.final())` then makes no task that could
        end unobserved ("Task exception was never retrieved") when the endpoint closes."""
        return self._final

    def cancel(self) -> ClientTx | None:
        """§9.1: CANCEL a pending INVITE — now if a provisional arrived, else when one does.
        Returns the CANCEL's own transaction once sent."""
        if self.request.method != "INVITE" or self._final.done() or self.cancel_tx is not None:
            return self.cancel_tx
        if not self.provisional:
            self._cancel_pending = True  # §9.1: not before a provisional response
            return None
        assert self.hop is not None
        self.cancel_tx = ClientTx(self.endpoint, make_cancel(self.request), self.target, None)
        self.endpoint._begin(self.cancel_tx, self.hop, fill_via=False)
        return self.cancel_tx

    def _set(self, response: Response) -> None:
        if not self._final.done():
            self._final.set_result(response)

    def _fail(self, error: SipFailure) -> None:
        if not self._final.done():
            self._final.set_exception(error)
            self._final.exception()  # retrieved: a role may never await a fire-and-forget request


class Incoming:
    """A new request delivered to `on_request`. `respond(...)` builds a response with the §8.2.6
    copy rules (one To tag for every response of this request) and sends it through the server
    transaction. `cancelled` becomes True (and `on_cancel` callbacks run) when a CANCEL ended it;
    `dialog` is the SipDialog an in-dialog request belongs to, if one is registered."""

    def __init__(self, endpoint: SipEndpoint, request: Request, source: Peer, transaction: ServerTransaction) -> None:
        self.endpoint = endpoint
        self.request = request
        self.source = source
        self.transaction = transaction
        self.cancelled = False
        self.final: Response | None = None
        self.dialog: Any = None
        self._tag: str | None = None
        self._cancel_callbacks: list[Callable[[Incoming], Any]] = []

    @property
    def to_tag(self) -> str:
        """The To tag this endpoint answers with (the request's own, for in-dialog requests)."""
        if self._tag is None:
            self._tag = self.request.to.tag or self.endpoint.core.new_tag()
        return self._tag

    @property
    def answered(self) -> bool:
        return self.final is not None

    def on_cancel(self, callback: Callable[[Incoming], Any]) -> None:
        self._cancel_callbacks.append(callback)

    def response(self, status: int, reason: str | None = None, *, headers: Iterable[tuple[str, str]] = (),
                 body: bytes = b"", to_tag: str | None = None, content_type: str | None = None,
                 contact: str | None = None) -> Response:
        """The response to this request, not sent yet."""
        if to_tag is not None:
            self._tag = to_tag
        return make_response(self.request, status, reason, to_tag=self.to_tag if status > 100 else None,
                             contact=contact, extra_headers=list(headers), body=body, content_type=content_type)

    def respond(self, status: int, reason: str | None = None, *, headers: Iterable[tuple[str, str]] = (),
                body: bytes = b"", to_tag: str | None = None, content_type: str | None = None,
                contact: str | None = None) -> Response:
        response = self.response(status, reason, headers=headers, body=body, to_tag=to_tag,
                                 content_type=content_type, contact=contact)
        self.send(response)
        return response

    def send(self, response: Response, *, until_acked: bool = False) -> None:
        """Send a response built elsewhere (a proxy forwarding one) through this transaction.
        `until_acked`: an INVITE's 2xx the core retransmits until its ACK (§13.3.1.4)."""
        if response.status >= 200 and self.final is None:
            self.final = response
        self.endpoint._respond(self, response, until_acked)


# -- the endpoint ----------------------------------------------------------------------------


class _TlsAccepting(HoldingProtocol):
    """An accepted plain TCP connection on a TLS port: held until `upgrade`. Accepting plain
    TCP and then calling start_tls is what lets a refused handshake be a named event: asyncio's
    `start_server(ssl=...)` swallows failed handshakes."""

    def __init__(self, endpoint: SipEndpoint, config: TlsConfig) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.config = config

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if not self.endpoint.admit(transport.get_extra_info("peername"), "tls"):
            transport.close()  # refused before the cost of a handshake
            return
        self.endpoint._spawn(self.endpoint._accept_tls(transport, self.config))  # type: ignore[arg-type]


class SipEndpoint:
    """See the package docstring."""

    def __init__(self, network: Network, *, host: str, node: str | None = None, rng: random.Random | None = None,
                 timers: TimerSettings | None = None, events: EventLog | None = None,
                 tls: TlsConfig | None = None, relays_calls: bool = False,
                 limits: TransportLimits | None = None) -> None:
        self.network = network
        self.host = host
        self.node = node or host
        self.rng = rng if rng is not None else random.Random(0)
        self.timers = timers or TimerSettings()
        self.events = events if events is not None else network.events
        self.tls = tls
        self.limits = limits or TransportLimits()
        self.log = self.events.logger(node=self.node)
        # A B2BUA (SBC, proxy, SBA) sends each new INVITE on as a new request: with
        # `relays_calls` the core answers one that arrives with Max-Forwards 0 (RFC 7332 §3).
        self.core = UserAgentCore(self.rng, settings=self.timers, log=self.log, relays_calls=relays_calls)
        self.layer = self.core.layer
        self.address = network.resolve(host)
        self.on_request: RequestHandler | None = None
        self.on_ack: Callable[[Request, Peer], Any] | None = None
        self.on_connection_closed: Callable[[Connection, str], Any] | None = None
        self.listeners: list[Listener] = []
        self.listen_ports: dict[str, int] = {}
        self.tls_listen_configs: list[TlsConfig] = []
        self.connections: dict[tuple[str, int, str], Connection] = {}
        self.inbound_per_address: dict[str, int] = {}  # open connections each remote address made
        self._connecting: dict[tuple[str, int, str], asyncio.Future[Connection]] = {}
        self._udp: UdpSocket | None = None
        self._udp_opening: asyncio.Future[UdpSocket] | None = None
        self._clients: dict[ClientTransaction, ClientTx] = {}
        self._incoming: dict[ServerTransaction, Incoming] = {}
        # (Call-ID, CSeq) of a 2xx sent until_acked -> called with its ACK, or None after 64*T1
        self.ack_waiters: dict[tuple[str, int], Callable[[Request | None], Any]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when: float | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._conn_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    @property
    def relays_calls(self) -> bool:
        return self.core.relays_calls

    @relays_calls.setter
    def relays_calls(self, value: bool) -> None:
        self.core.relays_calls = value

    @property
    def dialogs(self) -> dict[tuple[str, str | None, str | None], Any]:
        """Dialog id -> SipDialog: the core checks a request within one before the role sees it."""
        return self.core.dialogs  # type: ignore[return-value]

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = self.network.loop  # binds the network (and its event clock) to the loop too
        return self._loop

    def contact(self, transport: str, *, toward: str | None = None) -> str:
        """Our Contact for `transport`: our name toward `toward` (`name_toward`) and the port we
        listen on (if we do)."""
        port = self.listen_ports.get(transport)
        host = self.name_toward(toward)
        where = host if port is None else f"{host}:{port}"
        return f"<sip:{where};transport={transport}>"

    def name_toward(self, peer: str | None) -> str:
        """How we name ourselves in Via and Contact toward `peer` (a host name or an address):
        our host name to the lab's nodes, our address to a peer outside the lab, which cannot
        resolve the lab's names."""
        return self.address if peer is not None and self.network.is_external(peer) else self.host

    def new_connection_id(self) -> str:
        return f"{self.node}/{next(self._conn_ids)}"

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = self.loop.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self.log.info("sip.internal_error", error=f"{type(exc).__name__}: {exc}")
            self.loop.call_exception_handler({"message": f"endpoint {self.node} task failed", "exception": exc})

    # -- listening ---------------------------------------------------------------------------
    async def listen(self, transport: str, port: int | None = None, *, tls: TlsConfig | None = None) -> Listener:
        """Listen for SIP on `transport` ("udp", "tcp", "tls") at `port` (None: 5060/5061)."""
        transport = check_transport(transport)
        port = DEFAULT_PORTS[transport] if port is None else port
        if transport == "udp":
            listener = await self.network.listen(self.host, port, "udp", lambda: UdpSocket(self))
            self._size_receive_buffer(listener.endpoint[1])  # type: ignore[index]
            if self._udp is None:
                self._udp = listener.endpoint[1]  # type: ignore[index,assignment]
        elif transport == "tcp":
            listener = await self.network.listen(self.host, port, "tcp", lambda: Connection(self, "tcp", inbound=True))
        else:
            if tls is None or not tls.identity or tls.trust is None:
                raise ValueError(f"{self.node}: a TLS listener needs TlsConfig(identity=..., trust=...)")
            listener = await self.network.listen(self.host, port, "tcp", lambda: _TlsAccepting(self, tls))
            self.tls_listen_configs.append(tls)
        self.listeners.append(listener)
        self.listen_ports.setdefault(transport, listener.port)
        return listener

    def udp_queued_octets(self) -> int:
        """What waits unread in the receive buffer of the UDP socket we listen on (0 with none)."""
        return self._udp.queued_octets() if self._udp is not None else 0

    def _size_receive_buffer(self, udp: UdpSocket) -> None:
        """Ask the kernel for `limits.udp_receive_buffer_octets` on a UDP socket and log what it
        granted (transport.py: TransportLimits). The sim network has no kernel buffer to size."""
        wanted = self.limits.udp_receive_buffer_octets
        sock = udp.transport.get_extra_info("socket") if udp.transport is not None else None
        if not wanted or sock is None:
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, wanted)
        granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self.log.info("sip.udp.buffer", port=udp.port, requested=wanted, granted=granted)

    async def _accept_tls(self, transport: asyncio.Transport, config: TlsConfig) -> None:
        conn = Connection(self, "tls", inbound=True)
        conn.admitted = True  # counted when the TCP connection was accepted
        policy = replace(config.policy, mutual=config.require_client_cert)
        try:
            tls_transport, info = await upgrade(transport, conn, policy=policy, identity=config.identity,
                                                trust=config.trust, server_side=True, log=self.log)  # type: ignore[arg-type]
        except TlsRefused:
            self.release(transport.get_extra_info("peername"))
            return  # simulator.net.tls has logged the named refusal
        except BaseException:
            self.release(transport.get_extra_info("peername"))
            raise
        conn.tls = info
        conn.connection_made(tls_transport)

    # -- the transport's interface (simulator.endpoint.transport.TransportUser) -------------------
    def admit(self, remote: tuple[str, int], transport: str) -> bool:
        """Count one more connection from `remote`'s address, or refuse it (False, an event)."""
        address = remote[0]
        held = self.inbound_per_address.get(address, 0)
        if held >= self.limits.max_connections_per_address:
            self.log.info("sip.conn.refused", transport=transport, peer=hostport(remote),
                      limit=self.limits.max_connections_per_address)
            return False
        self.inbound_per_address[address] = held + 1
        return True

    def release(self, remote: tuple[str, int]) -> None:
        address = remote[0]
        left = self.inbound_per_address.get(address, 1) - 1
        if left > 0:
            self.inbound_per_address[address] = left
        else:
            self.inbound_per_address.pop(address, None)

    def connection_opened(self, conn: Connection) -> bool:
        if conn.inbound and not conn.admitted:
            if not self.admit(conn.remote, conn.transport_name):
                return False
            conn.admitted = True
        key = (conn.remote[0], conn.remote[1], conn.transport_name)
        self.connections.setdefault(key, conn)
        self.log.info("sip.conn.opened", conn=conn.id, transport=conn.transport_name, peer=hostport(conn.remote),
                  local=hostport(conn.local), inbound=conn.inbound,
                  reason="accepted" if conn.inbound else "connected")
        return True

    def connection_closed(self, conn: Connection, reason: str) -> None:
        key = (conn.remote[0], conn.remote[1], conn.transport_name)
        if self.connections.get(key) is conn:
            del self.connections[key]
        if conn.admitted:
            self.release(conn.remote)
        self.log.info("sip.conn.closed", conn=conn.id, transport=conn.transport_name, peer=hostport(conn.remote),
                  reason=reason)
        now = self.loop.time()
        actions: list[Any] = []
        for tx, ctx in list(self._clients.items()):
            if ctx.hop is not None and ctx.hop.connection is conn and not ctx.done:
                actions += self.core.transport_error(tx, now)
        self._run(actions)
        if self.on_connection_closed is not None:
            try:
                self.on_connection_closed(conn, reason)
            except Exception as exc:  # a role's bug must not take the transport down
                self.log.info("sip.handler_error", where="on_connection_closed", error=f"{type(exc).__name__}: {exc}")

    def _client_tls(self, target: Target) -> TlsConfig:
        config = target.tls or self.tls or (self.tls_listen_configs[0] if self.tls_listen_configs else None)
        if config is None or config.trust is None:
            raise ValueError(f"{self.node}: a TLS target needs a TlsConfig with trust= (SipEndpoint(tls=...) "
                             f"or Target(tls=...))")
        return config

    async def _hop_for(self, target: Target) -> Hop:
        if target.connection is not None:
            conn = target.connection
            if not conn.is_open:
                raise TransportFailure("connection.closed", f"{conn!r} is closed ({conn.close_reason})")
            return Hop(conn.transport_name, conn.remote[0], conn.remote[1], conn)
        address = self._resolve(target.host)
        assert target.port is not None
        if target.transport == "udp":
            return Hop("udp", address, target.port, None, await self._udp_socket())
        key = (address, target.port, target.transport)
        conn = self.connections.get(key)
        if conn is not None and conn.is_open:
            return Hop(target.transport, address, target.port, conn)
        pending = self._connecting.get(key)
        if pending is None:
            pending = self._connecting[key] = self.loop.create_future()
            try:
                conn = await self._connect(target, address)
            except TransportFailure as failure:
                pending.set_exception(failure.with_traceback(None))  # kept without frames: see _client_failed
                pending.exception()
                raise
            finally:
                self._connecting.pop(key, None)
            pending.set_result(conn)
        else:
            conn = await asyncio.shield(pending)
        return Hop(target.transport, address, target.port, conn)

    def _hop_now(self, target: Target) -> Hop | None:
        """The hop when no waiting is needed (an open connection, or our UDP socket)."""
        if target.connection is not None:
            conn = target.connection
            return Hop(conn.transport_name, conn.remote[0], conn.remote[1], conn) if conn.is_open else None
        if target.transport == "udp":
            if self._udp is None:
                return None
            return Hop("udp", self._resolve(target.host), target.port, None, self._udp)  # type: ignore[arg-type]
        address = self._resolve(target.host)
        conn = self.connections.get((address, target.port, target.transport))  # type: ignore[arg-type]
        if conn is not None and conn.is_open:
            return Hop(target.transport, address, target.port, conn)  # type: ignore[arg-type]
        return None

    def _resolve(self, host: str) -> str:
        try:
            return self.network.resolve(host)
        except socket.gaierror as exc:
            raise TransportFailure("dns.unknown_host", str(exc)) from None

    async def _udp_socket(self) -> UdpSocket:
        if self._udp is not None:
            return self._udp
        if self._udp_opening is None:
            self._udp_opening = self.loop.create_future()
            _, sock = await self.network.open_datagram(self.host, 0, lambda: UdpSocket(self))
            self._udp = sock  # type: ignore[assignment]
            self._udp_opening.set_result(sock)  # type: ignore[arg-type]
            return sock  # type: ignore[return-value]
        return await asyncio.shield(self._udp_opening)

    async def _connect(self, target: Target, address: str) -> Connection:
        timeout = 64 * self.timers.t1  # no longer than Timer B/F would wait for an answer
        port = target.port
        assert port is not None
        try:
            if target.transport == "tcp":
                _, protocol = await self.network.connect(
                    self.host, address, port, lambda: Connection(self, "tcp", inbound=False), timeout=timeout)
                return protocol  # type: ignore[return-value]
            config = self._client_tls(target)
            plain, _ = await self.network.connect(self.host, address, port, HoldingProtocol, timeout=timeout)
            conn = Connection(self, "tls", inbound=False)
            tls_transport, info = await upgrade(
                plain, conn, policy=config.policy, identity=config.identity, trust=config.trust,  # type: ignore[arg-type]
                server_side=False, peer_name=target.tls_name or target.host, log=self.log)
            conn.tls = info
            conn.connection_made(tls_transport)
            return conn
        except TlsRefused as exc:
            raise TransportFailure(exc.reason, exc.detail) from None
        except ConnectionRefusedError as exc:
            raise TransportFailure("connect.refused", str(exc)) from None
        except TimeoutError as exc:
            raise TransportFailure("connect.timeout", str(exc) or f"no answer within {timeout:g} s") from None
        except OSError as exc:
            raise TransportFailure("connect.failed", str(exc)) from None

    # -- sending requests --------------------------------------------------------------------
    def request(self, request: Request, target: Target, on_provisional: Callable[[Response], Any] | None = None) -> ClientTx:
        """Start a client transaction; see the package docstring for the Via rules."""
        if self.closed:
            raise RuntimeError(f"endpoint {self.node} is closed")
        ctx = ClientTx(self, request, target, on_provisional)
        try:
            hop = self._hop_now(target)
        except TransportFailure as failure:
            self._client_failed(ctx, failure)
            return ctx
        if hop is not None:
            self._begin(ctx, hop)
        else:
            self._spawn(self._start(ctx))
        return ctx

    async def _start(self, ctx: ClientTx) -> None:
        try:
            hop = await self._hop_for(ctx.target)
        except TransportFailure as failure:
            self._client_failed(ctx, failure)
            return
        self._begin(ctx, hop)

    def _client_failed(self, ctx: ClientTx, failure: TransportFailure) -> None:
        # The failure is an answer now, kept by the transaction: without its traceback and the error
        # it replaced, whose frames hold the transaction, it makes no cycle for the cyclic collector.
        failure.__traceback__ = failure.__context__ = None
        self.log.info("sip.transport_error", reason=failure.reason, detail=failure.detail,
                  dst=f"{ctx.target.host}:{ctx.target.port}", transport=ctx.target.transport,
                  call_id=ctx.request.call_id, cseq=_cseq(ctx.request))
        ctx._fail(failure)

    def _via(self, hop: Hop) -> str:
        if hop.transport == "udp":
            port: int | None = hop.socket.port if hop.socket else None
        else:
            port = self.listen_ports.get(hop.transport)
            if port is None and hop.connection is not None:
                port = hop.connection.local[1]
        host = self.name_toward(hop.address)
        sent_by = host if port is None else f"{host}:{port}"
        return f"SIP/2.0/{hop.transport.upper()} {sent_by};branch={branch(self.rng)};rport"

    def _fill_via(self, request: Request, hop: Hop) -> None:
        """Our Via on top: it replaces a top Via that names this host (a UA built the request
        with its own Via), else it is added above the others (a proxy forwarding, §16.6)."""
        via = self._via(hop)
        top = request.top_via
        if top is not None and top.host.lower() in (self.host.lower(), self.address):
            request.headers.pop_first("Via")
        request.headers.add("Via", via, first=True)

    def _begin(self, ctx: ClientTx, hop: Hop, *, fill_via: bool = True) -> None:
        ctx.hop = hop
        if fill_via:
            self._fill_via(ctx.request, hop)
        tx, actions = self.core.send_request(ctx.request, hop, self.loop.time(), hop.transport.upper())
        ctx.transaction = tx
        self._clients[tx] = ctx
        self._run(actions)

    def send_ack(self, ack: Request, target: Target) -> None:
        """Send an ACK for a 2xx (§13.2.2.4: no transaction); it is sent again, by itself, for
        each retransmission of that 2xx that arrives within 64*T1."""
        hop = self._hop_now(target)
        if hop is None:
            self._spawn(self._send_ack_later(ack, target))
            return
        self._fill_via(ack, hop)
        self._run(self.core.send_ack(ack, hop, self.loop.time()))

    async def _send_ack_later(self, ack: Request, target: Target) -> None:
        try:
            await self._hop_for(target)
        except TransportFailure as failure:
            self.log.info("sip.transport_error", reason=failure.reason, detail=failure.detail,
                      dst=f"{target.host}:{target.port}", transport=target.transport,
                      call_id=ack.call_id, cseq=_cseq(ack))
            return
        self.send_ack(ack, target)

    # -- the wire ------------------------------------------------------------------------------
    def _send(self, message: Request | Response, hop: Hop) -> bool:
        data = message.to_bytes()
        if hop.transport == "udp":
            sock = hop.socket or self._udp
            if sock is None or sock.transport is None or sock.transport.is_closing():
                return False
            sock.sendto(data, (hop.address, hop.port))
            local, conn_id = f"{self.address}:{sock.port}", None
        else:
            conn = hop.connection
            if conn is None or not conn.write(data):
                return False
            local, conn_id = conn.local_text, conn.id
        self.log.info("sip.sent", transport=hop.transport, src=local, dst=f"{hop.address}:{hop.port}",
                      conn=conn_id, call_id=message.call_id, cseq=_cseq(message),
                      summary=summary(message), message=data.decode("utf-8", "surrogateescape"))
        return True

    def message_received(self, message: Request | Response, peer: Peer, sock: UdpSocket | None) -> None:
        conn = peer.connection
        if conn is not None:
            src, dst, conn_id = conn.remote_text, conn.local_text, conn.id
        else:
            src, dst, conn_id = peer.hostport, f"{self.address}:{sock.port if sock else 0}", None
        self.log.info("sip.received", transport=peer.transport, src=src, dst=dst, conn=conn_id,
                      call_id=message.call_id, cseq=_cseq(message), summary=summary(message),
                      message=message.to_bytes().decode("utf-8", "surrogateescape"))
        if conn is not None:
            hop = conn.hop  # one per connection: every message on it comes from the same place
            if hop is None:
                hop = conn.hop = Hop(peer.transport, peer.address, peer.port, conn, None)
        else:
            hop = Hop(peer.transport, peer.address, peer.port, None, sock)
        if isinstance(message, Request):
            try:
                hop = self._stamp_via(message, peer, hop)
            except SipParseError as error:
                self.message_unparseable(error, peer, message.to_bytes(), fatal=False, socket=sock)
                return
        self._run(self.core.receive(message, hop, self.loop.time(), hop.transport.upper()))

    def _stamp_via(self, request: Request, peer: Peer, hop: Hop) -> Hop:
        """RFC 3261 §18.2.1 + RFC 3581 §4: received= when the sent-by host is not the source
        address, rport= the source port when asked. A UDP response goes to received:rport,
        or to the sent-by port without rport (§18.2.2)."""
        via = request.top_via
        if via is None:
            return hop
        changed = False
        if via.host != peer.address:
            via.params["received"] = peer.address
            changed = True
        if via.rport_requested:
            via.params["rport"] = str(peer.port)
            changed = True
        if changed:
            request.headers.pop_first("Via")
            request.headers.add("Via", str(via), first=True)
        if peer.transport == "udp" and not via.rport_requested:
            hop = Hop("udp", peer.address, via.port or 5060, None, hop.socket)
        return hop

    def message_unparseable(self, error: SipParseError, peer: Peer, octets: bytes | None, *, fatal: bool,
                            socket: UdpSocket | None = None) -> None:
        answer = answer_unparseable(octets, error) if octets else None
        action = "answered" if answer is not None else ("closed" if fatal else "dropped")
        self.log.info("sip.parse_error", src=peer.hostport, transport=peer.transport,
                  conn=peer.connection.id if peer.connection else None, status=error.status,
                  reason=error.reason, action=action)
        if answer is not None:
            self._send(answer, Hop(peer.transport, peer.address, peer.port, peer.connection, socket or self._udp))

    def datagram_error(self, exc: Exception) -> None:
        # ICMP port unreachable for some earlier datagram; Timer B/F decides the transaction's fate.
        self.log.info("sip.udp_error", error=str(exc))

    def internal_error(self, where: str, error: Exception) -> None:
        self.log.info("sip.internal_error", where=where, error=f"{type(error).__name__}: {error}")

    # -- the transaction layer's actions -----------------------------------------------------------
    def _run(self, actions: list[Any]) -> None:
        queue = actions
        i = 0
        while i < len(queue):  # carried out in order; a failed send appends the layer's reaction
            action = queue[i]
            i += 1
            kind = type(action)
            if kind is Send:
                if not self._send(action.message, action.destination) and action.transaction is not None:
                    queue = queue[i:] + self.core.transport_error(action.transaction, self.loop.time())
                    i = 0
            elif kind is RequestReceived:
                self._request_received(action)
            elif kind is Deliver:
                self._deliver(action)
            elif kind is Terminated:
                self._clients.pop(action.transaction, None)  # type: ignore[call-overload]
                self._incoming.pop(action.transaction, None)  # type: ignore[call-overload]
            elif kind is AckReceived:
                self._ack_received(action.ack, action.source)
            elif kind is Cancelled:
                self._cancelled(action)
            elif kind is AckTimeout:
                self._ack_timeout(action)
            elif kind is Timeout:
                self._timeout(action)
            elif kind is TransportError:
                self._transport_error(action.transaction)
        self._rearm()

    def _rearm(self) -> None:
        deadline = self.core.next_deadline()
        if deadline == self._timer_when:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_when = deadline
        if deadline is not None and not self.closed:
            self._timer = self.loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        when = self._timer_when or 0.0
        self._timer_when = None
        # A real loop may wake a hair early (its clock resolution): the deadline is what counts.
        self._run(self.core.handle_timer(max(self.loop.time(), when)))

    def _deliver(self, action: Deliver) -> None:
        message = action.message
        ctx = self._clients.get(action.transaction)  # type: ignore[call-overload]
        if ctx is None or not isinstance(message, Response):
            return
        if message.status < 200:
            ctx.provisional.append(message)
            if ctx._cancel_pending:
                ctx._cancel_pending = False
                ctx.cancel()
            if ctx.on_provisional is not None:
                self._call_back("on_provisional", ctx.on_provisional, message)
        else:
            ctx._set(message)

    def _timeout(self, action: Timeout) -> None:
        tx = action.transaction
        self.log.info("sip.timeout", method=tx.method, timer=action.timer, branch=tx.branch,
                  call_id=tx.request.call_id, cseq=_cseq(tx.request))
        ctx = self._clients.get(tx)  # type: ignore[call-overload]
        if ctx is not None:
            ctx._fail(TransactionTimeout(tx.method, action.timer, 64 * self.timers.t1))

    def _transport_error(self, tx: Any) -> None:
        hop: Hop = tx.peer
        conn = hop.connection
        reason = "connection.reset" if conn is not None and conn.closed else "send.failed"
        detail = (conn.close_reason or "") if conn is not None else f"udp to {hop.address}:{hop.port}"
        self.log.info("sip.transport_error", reason=reason, detail=detail, dst=f"{hop.address}:{hop.port}",
                  transport=hop.transport, call_id=tx.request.call_id, cseq=_cseq(tx.request))
        ctx = self._clients.get(tx)
        if ctx is not None:
            ctx._fail(TransportFailure(reason, detail))

    # -- what the core hands the role ----------------------------------------------------------------
    def _request_received(self, action: RequestReceived) -> None:
        hop: Hop = action.source
        conn = hop.connection
        if conn is not None and hop is conn.hop:
            peer = conn.peer  # the same fields, made once per connection
        else:
            peer = Peer(hop.transport, hop.address, hop.port, conn, conn.tls if conn is not None else None)
        incoming = Incoming(self, action.request, peer, action.transaction)
        incoming.dialog = action.dialog
        self._incoming[action.transaction] = incoming
        handler = self.on_request
        if handler is None:
            incoming.send(self.core.default_response(incoming.request, incoming.to_tag))
            return
        try:
            result = handler(incoming)
        except Exception as exc:
            self._handler_failed(incoming, exc)
            return
        if inspect.isawaitable(result):
            self._spawn_handler(result, incoming)

    def _spawn_handler(self, awaitable: Awaitable[Any], incoming: Incoming) -> asyncio.Task[Any]:
        async def run() -> None:
            try:
                await awaitable
            except Exception as exc:
                self._handler_failed(incoming, exc)
        return self._spawn(run())

    def _handler_failed(self, incoming: Incoming, exc: Exception) -> None:
        self.log.info("sip.handler_error", where="on_request", method=incoming.request.method,
                  call_id=incoming.request.call_id, error=f"{type(exc).__name__}: {exc}")
        if not incoming.answered:
            incoming.respond(500)

    def _call_back(self, where: str, callback: Callable[..., Any], *args: Any) -> None:
        try:
            result = callback(*args)
            if inspect.isawaitable(result):
                self._spawn(result)
        except Exception as exc:
            self.log.info("sip.handler_error", where=where, error=f"{type(exc).__name__}: {exc}")

    def _respond(self, incoming: Incoming, response: Response, until_acked: bool) -> None:
        now = self.loop.time()
        try:
            if until_acked:
                actions = self.core.send_2xx(incoming.transaction, response, now)
            else:
                actions = self.core.send_response(incoming.transaction, response, now)
        except TransactionStateError as exc:
            # e.g. a 200 racing the 487 of a CANCEL: the transaction keeps the first.
            self.log.info("sip.response.discarded", status=response.status, call_id=response.call_id,
                      cseq=_cseq(response), why=str(exc))
            return
        self._run(actions)

    def _cancelled(self, action: Cancelled) -> None:
        invite = self._incoming.get(action.transaction)
        if invite is None:
            return
        invite.cancelled = True
        invite.final = action.response
        invite._tag = action.response.to.tag
        for callback in invite._cancel_callbacks:
            self._call_back("on_cancel", callback, invite)

    def _ack_received(self, ack: Request, hop: Hop) -> None:
        waiter = self.ack_waiters.pop((ack.call_id, ack.cseq.seq), None)
        if waiter is not None:
            self._call_back("ack_waiter", waiter, ack)
        if self.on_ack is not None:
            peer = Peer(hop.transport, hop.address, hop.port, hop.connection,
                        hop.connection.tls if hop.connection else None)
            self._call_back("on_ack", self.on_ack, ack, peer)

    def _ack_timeout(self, action: AckTimeout) -> None:
        response = action.response
        waiter = self.ack_waiters.pop((response.call_id, response.cseq.seq), None)
        if waiter is not None:
            self._call_back("ack_waiter", waiter, None)

    # -- shutdown ------------------------------------------------------------------------------
    async def close(self) -> None:
        """Stop listening, close every connection, fail what is still pending."""
        if self.closed:
            return
        self.closed = True
        for listener in self.listeners:
            listener.close()
        for conn in list(self.connections.values()):
            conn.close("endpoint closed")
        if self._udp is not None and self._udp.transport is not None:
            self._udp.transport.close()
        for ctx in list(self._clients.values()):
            ctx._fail(TransportFailure("endpoint.closed", f"{self.node} closed"))
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.sleep(0)


def _cseq(message: Request | Response) -> str:
    cseq = message.cseq
    return f"{cseq.seq} {cseq.method}" if cseq is not None else ""
