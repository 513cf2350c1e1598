"""The in-memory network: named hosts in sites, joined by named links that can be cut.

Model
- A *site* is a LAN (`seattle`, `cloud`, `pstn`). Every host lives in one site and has a name,
  aliases (DNS names) and an IPv4 address (given, or 10.<site#>.0.<n> in creation order).
- A *link* (`wan-seattle`) joins two sites. The path between two hosts is the shortest chain of
  links between their sites, fixed (static routing; a cut link is not routed around). Same site =
  no link: no delay, never cut. See topology.py for link states and impairments.
- Streams (sim_stream.py) and datagrams (sim_datagram.py) are asyncio transports. TLS is the
  caller's `loop.start_tls()` over a stream, so handshakes and certificates are real.
- Connects: a SYN lost to a blackhole or to loss is retried after 1, 2, 4, 8, 16, 32 s (Linux
  tcp_syn_retries=6, RFC 6298 initial RTO 1 s); after the last one, TimeoutError at 127 s. So a
  connect through a blackholed link hangs until the caller's own (shorter) timeout, and succeeds
  on the next retry if the link comes back. A link that is down refuses at once; a port nobody
  listens on refuses after one round trip (RST).
- Time is the loop's clock: run on simulator.net.clock.VirtualClockLoop and an hour of traffic
  takes milliseconds. Randomness (jitter, loss) comes only from `self.rng`, seeded, drawn in
  the order events happen; deliveries due at the same instant happen in the order they were
  sent. Same seed, same program -> byte-identical event log.

Events (all with `t` from the loop clock): link.down/up/blackhole/impaired, net.listen,
net.connect, net.refused, net.connect_timeout, net.close, net.abort, net.eof, net.reset,
net.retransmit, net.timeout, net.drop.
"""

from __future__ import annotations

import asyncio
import errno
import heapq
import itertools
import random
from collections.abc import Callable, Iterable
from typing import Any

from simulator.events import EventLog
from simulator.net.base import (
    DATAGRAM,
    STREAM,
    Host,
    Listener,
    Network,
    ProtocolFactory,
    address_in_use,
    check_port,
)
from simulator.net.sim_datagram import DatagramEndpoint
from simulator.net.sim_stream import StreamPair
from simulator.net.topology import (
    BLACKHOLE,
    DOWN,
    LINK_STATES,
    Path,
    SiteTopology,
)

SYN_RETRIES = 6  # Linux net.ipv4.tcp_syn_retries
INITIAL_RTO = 1.0  # RFC 6298 §2.1
EPHEMERAL_PORTS = range(49152, 65536)  # RFC 6335 §6


class _StreamListener(Listener):
    def __init__(self, net: SimNetwork, host: Host, port: int, factory: ProtocolFactory) -> None:
        self.net = net
        self.host = host
        self.port = port
        self.transport = STREAM
        self.factory = factory
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.net.unbind((self.host.address, self.port), STREAM, self)


class SimNetwork(Network, SiteTopology):
    """In-memory network on the loop's (virtual) clock. See the module docstring for the model."""

    kind = "sim"

    def __init__(self, *, seed: int = 0, events: EventLog | None = None) -> None:
        super().__init__(events)
        self.seed = seed
        self.rng = random.Random(seed)
        self._init_topology()
        self._host_numbers: dict[str, int] = {}
        self._bound: dict[tuple[str, int, str], Any] = {}
        self._next_ephemeral: dict[str, int] = {}
        self._conns: dict[str, StreamPair] = {}
        self._conn_ids = itertools.count(1)
        self._queue: list[tuple[float, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0

    # -- topology --------------------------------------------------------------------------
    def add_host(
        self, name: str, *, address: str | None = None, aliases: Iterable[str] = (), site: str | None = None
    ) -> Host:
        site = self._host_site(name, site)
        if address is None:
            number = self._host_numbers.get(site, 9) + 1
            if number > 254:
                raise ValueError(f"site {site}: no automatic addresses left; give host {name} an address")
            self._host_numbers[site] = number
            address = f"10.{self.sites[site]}.0.{number}"
        return self.hosts.add(Host(name, address, tuple(aliases), site))

    # -- link control ----------------------------------------------------------------------
    def set_link_state(self, name: str, state: str) -> None:
        if state not in LINK_STATES:
            raise ValueError(f"bad link state {state!r}: expected one of {', '.join(LINK_STATES)}")
        link = self.link(name)
        if link.state == state:
            return
        previous, link.state = link.state, state
        affected = [conn for conn in self._conns.values() if link in conn.path.links] if state == DOWN else []
        self.log.info(f"link.{state}", link=name, previous=previous, **({"reset": len(affected)} if state == DOWN else {}))
        for conn in affected:
            conn.reset(name)

    # -- the delivery queue --------------------------------------------------------------
    def at(self, when: float, callback: Callable[..., Any], *args: Any) -> None:
        """Run `callback(*args)` at virtual time `when`; same-time entries run in call order
        (the loop's own timer heap does not promise that, and streams rely on it)."""
        heapq.heappush(self._queue, (when, next(self._seq), callback, args))
        head = self._queue[0][0]
        if self._timer is not None and self._timer_when <= head:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_when = head
        self._timer = self.loop.call_at(head, self._run_due)

    def _run_due(self) -> None:
        self._timer = None
        now = self.loop.time() + 1e-9
        due = []
        while self._queue and self._queue[0][0] <= now:
            due.append(heapq.heappop(self._queue))
        for _when, _seq, callback, args in due:
            try:
                callback(*args)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self.loop.call_exception_handler({"message": "sim network delivery failed", "exception": exc})
        if self._queue and self._timer is None:
            self._timer_when = self._queue[0][0]
            self._timer = self.loop.call_at(self._timer_when, self._run_due)

    # -- ports -----------------------------------------------------------------------------
    def _bind(self, host: Host, port: int, transport: str, owner: Any) -> int:
        if port == 0:
            port = self._ephemeral(host, transport)
        key = (host.address, port, transport)
        if key in self._bound:
            raise address_in_use(host, port, transport)
        self._bound[key] = owner
        return port

    def _ephemeral(self, host: Host, transport: str) -> int:
        start = self._next_ephemeral.get(host.address, EPHEMERAL_PORTS.start)
        for offset in range(len(EPHEMERAL_PORTS)):
            port = EPHEMERAL_PORTS.start + (start - EPHEMERAL_PORTS.start + offset) % len(EPHEMERAL_PORTS)
            if (host.address, port, transport) not in self._bound:
                self._next_ephemeral[host.address] = port + 1 if port + 1 < EPHEMERAL_PORTS.stop else EPHEMERAL_PORTS.start
                return port
        raise OSError(errno.EADDRNOTAVAIL, f"{host.name}: no free ephemeral {transport} port")

    def unbind(self, address: tuple[str, int], transport: str, owner: Any) -> None:
        key = (address[0], address[1], transport)
        if self._bound.get(key) is owner:
            del self._bound[key]

    # -- streams ---------------------------------------------------------------------------
    async def listen_stream(self, host: str, port: int, protocol_factory: ProtocolFactory) -> Listener:
        check_port(port)
        if not callable(protocol_factory):
            raise TypeError("protocol_factory must be callable (returning an asyncio.Protocol)")
        where = self.host(host)
        listener = _StreamListener(self, where, 0, protocol_factory)
        listener.port = self._bind(where, port, STREAM, listener)
        self.log.info("net.listen", host=where.name, address=where.address, port=listener.port, transport=STREAM)
        return listener

    async def connect_stream(
        self, from_host: str, to_name: str, port: int, protocol_factory: ProtocolFactory, *, timeout: float | None = None
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        check_port(port, allow_zero=False)
        src, dst = self.host(from_host), self.host(to_name)
        path = self._path(src, dst)
        future: asyncio.Future[tuple[asyncio.Transport, asyncio.BaseProtocol]] = self.loop.create_future()
        attempt = _ConnectAttempt(self, src, dst, port, path, protocol_factory, future)
        attempt.send_syn(0)
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            if not attempt.timed_out_by_network:
                culprit = path.first(BLACKHOLE)
                reason = f"link {culprit.name} blackholed" if culprit else "no answer"
                self.log.info("net.connect_timeout", host=src.name, to=to_name, port=port, after=timeout, reason=reason)
                raise TimeoutError(
                    errno.ETIMEDOUT, f"connect {src.name} -> {to_name}:{port} timed out after {timeout} s ({reason})"
                ) from None
            raise
        finally:
            attempt.give_up()
            # A refused connect's traceback keeps this frame: holding the future, it would make a
            # cycle (future -> error -> traceback -> frame) that only the cyclic collector frees.
            del attempt, future

    def register_connection(self, conn: StreamPair) -> None:
        self._conns[conn.id] = conn

    def forget_connection(self, conn: StreamPair) -> None:
        self._conns.pop(conn.id, None)
        address, port = conn.client.get_extra_info("sockname")
        if not isinstance(self._bound.get((address, port, STREAM)), _StreamListener):
            self._bound.pop((address, port, STREAM), None)

    def new_connection_id(self) -> str:
        return f"c{next(self._conn_ids)}"

    @property
    def connections(self) -> list[StreamPair]:
        """Connections with at least one end still open, oldest first."""
        return list(self._conns.values())

    # -- datagrams -------------------------------------------------------------------------
    async def open_datagram(
        self, host: str, port: int, protocol_factory: ProtocolFactory, *, remote: tuple[str, int] | None = None
    ) -> tuple[asyncio.DatagramTransport, asyncio.DatagramProtocol]:
        check_port(port)
        where = self.host(host)
        if remote is not None:
            remote_host, remote_port = remote
            remote = (self.resolve(remote_host), check_port(remote_port, allow_zero=False))
        protocol = protocol_factory()
        endpoint = DatagramEndpoint(self, where, 0, protocol, remote)  # type: ignore[arg-type]
        endpoint.port = self._bind(where, port, DATAGRAM, endpoint)
        endpoint._extra["sockname"] = (where.address, endpoint.port)
        self.log.info("net.listen", host=where.name, address=where.address, port=endpoint.port, transport=DATAGRAM)
        protocol.connection_made(endpoint)
        return endpoint, protocol  # type: ignore[return-value]

    def unbind_datagram(self, endpoint: DatagramEndpoint) -> None:
        self.unbind((endpoint.host.address, endpoint.port), DATAGRAM, endpoint)

    def send_datagram(self, endpoint: DatagramEndpoint, data: bytes, dst: tuple[str, int]) -> None:
        src = (endpoint.host.address, endpoint.port)
        target = self.hosts.by_address.get(dst[0])
        if target is None:
            self._drop(src, dst, len(data), "no such address")
            return
        path = self._path(endpoint.host, target)
        culprit = path.first(DOWN) or path.first(BLACKHOLE)
        if culprit is not None:
            self._drop(src, dst, len(data), f"link {culprit.state}", culprit.name)
            return
        if path.lost(self.rng):
            self._drop(src, dst, len(data), "loss", path.lossy().name)  # type: ignore[union-attr]
            return
        self.at(self.loop.time() + path.delay(self.rng), self._datagram_arrives, data, src, dst, endpoint, path)

    def _datagram_arrives(
        self, data: bytes, src: tuple[str, int], dst: tuple[str, int], sender: DatagramEndpoint, path: Path
    ) -> None:
        endpoint = self._bound.get((dst[0], dst[1], DATAGRAM))
        if endpoint is None:
            self._drop(src, dst, len(data), "port unreachable")
            if sender.remote is not None and path.first(DOWN) is None and path.first(BLACKHOLE) is None:
                # ICMP port unreachable (RFC 1122 §4.1.3.3) reaches a *connected* socket only:
                # Linux reports ECONNREFUSED and asyncio calls error_received().
                self.at(self.loop.time() + path.delay(self.rng), sender.unreachable, dst)
            return
        endpoint.receive(data, src)

    def _drop(self, src: tuple[str, int], dst: tuple[str, int], size: int, reason: str, link: str | None = None) -> None:
        fields: dict[str, Any] = {"src": f"{src[0]}:{src[1]}", "dst": f"{dst[0]}:{dst[1]}", "bytes": size, "reason": reason}
        if link is not None:
            fields["link"] = link
        self.log.info("net.drop", transport=DATAGRAM, **fields)

    async def close(self) -> None:
        for conn in list(self._conns.values()):
            for end in (conn.client, conn.server):
                end.abort()
        for owner in list(self._bound.values()):
            owner.close()
        await asyncio.sleep(0)


class _ConnectAttempt:
    """The client side of a three-way handshake on the sim network (see module docstring)."""

    def __init__(
        self,
        net: SimNetwork,
        src: Host,
        dst: Host,
        port: int,
        path: Path,
        factory: ProtocolFactory,
        future: asyncio.Future[Any],
    ) -> None:
        self.net, self.src, self.dst, self.port, self.path = net, src, dst, port, path
        self.factory, self.future = factory, future
        self.retry: asyncio.TimerHandle | None = None
        self.timed_out_by_network = False
        self.conn: StreamPair | None = None
        self.client_port = 0

    def _fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)

    def _refuse(self, reason: str, link: str | None = None) -> None:
        if self.future.done():
            return
        fields = {"link": link} if link else {}
        self.net.log.info("net.refused", host=self.src.name, to=self.dst.name, port=self.port, reason=reason, **fields)
        where = f"{self.src.name} -> {self.dst.name} ({self.dst.address}):{self.port}"
        self._fail(ConnectionRefusedError(errno.ECONNREFUSED, f"connect {where} refused: {reason}"))

    def send_syn(self, attempt: int) -> None:
        self.retry = None
        if self.future.done():
            return
        down = self.path.first(DOWN)
        if down is not None:
            self._refuse(f"link {down.name} down", down.name)
            return
        if self.path.first(BLACKHOLE) is not None or self.path.lost(self.net.rng):
            if attempt >= SYN_RETRIES:
                # The last SYN's RTO expiring ends the attempt (Linux: 127 s with 6 retries).
                self.retry = self.net.loop.call_later(INITIAL_RTO * 2**attempt, self._syn_timeout)
                return
            self.retry = self.net.loop.call_later(INITIAL_RTO * 2**attempt, self.send_syn, attempt + 1)
            return
        self.net.at(self.net.loop.time() + self.path.delay(self.net.rng), self._syn_arrives)

    def _syn_timeout(self) -> None:
        self.retry = None
        self.timed_out_by_network = True
        culprit = self.path.first(BLACKHOLE)
        reason = f"link {culprit.name} blackholed" if culprit else "SYNs lost"
        self.net.log.info("net.connect_timeout", host=self.src.name, to=self.dst.name, port=self.port,
                          after="syn retries", reason=reason)
        self._fail(TimeoutError(errno.ETIMEDOUT, f"connect {self.src.name} -> {self.dst.name}:{self.port} "
                                                 f"timed out: {SYN_RETRIES} SYN retries unanswered ({reason})"))

    def _syn_arrives(self) -> None:
        if self.future.done():
            return
        net = self.net
        listener = net._bound.get((self.dst.address, self.port, STREAM))
        back = net.loop.time() + self.path.delay(net.rng)
        if listener is None:
            net.at(back, self._refuse, f"nothing listening on {self.dst.name}:{self.port}")
            return
        self.client_port = net._bind(self.src, 0, STREAM, self)
        conn = StreamPair(
            net,
            net.new_connection_id(),
            self.path,
            client=(self.src, (self.src.address, self.client_port)),
            server=(self.dst, (self.dst.address, self.port)),
        )
        self.conn = conn
        net.register_connection(conn)
        # Server bytes may not overtake the SYN-ACK; client bytes may not overtake the accept.
        conn.server.out.last_arrival = back
        conn.client.out.last_arrival = net.loop.time()
        net.at(back, self._established)
        net.log.info(
                     "net.connect",
                     conn=conn.id,
                     host=self.src.name,
                     to=self.dst.name,
                     src=f"{self.src.address}:{self.client_port}",
                     dst=f"{self.dst.address}:{self.port}",
                     links=",".join(self.path.names),
                     )
        protocol = listener.factory()
        conn.server.set_protocol(protocol)
        try:
            protocol.connection_made(conn.server)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            net.loop.call_exception_handler({"message": "server protocol.connection_made() failed", "exception": exc})
            conn.server.abort()

    def _established(self) -> None:
        conn = self.conn
        assert conn is not None
        if conn.reset_done or conn.client.state != "open":
            self._refuse("connection reset during handshake")
            return
        if self.future.done():  # the caller stopped waiting (timeout, cancel): tear down
            conn.client.abort()
            return
        protocol = self.factory()
        conn.client.set_protocol(protocol)
        try:
            protocol.connection_made(conn.client)
        except BaseException as exc:
            conn.client.abort()
            self._fail(exc)
            return
        self.future.set_result((conn.client, protocol))

    def give_up(self) -> None:
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None

    def close(self) -> None:  # owner of the bound client port, for SimNetwork.close()
        if self.conn is not None:
            self.conn.client.abort()
