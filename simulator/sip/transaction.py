"""RFC 3261 §17 transactions: the four state machines, their timers, and matching.

Theory of operation
-------------------
A transaction is one request and the responses to it. RFC 3261 §17 describes four
machines — INVITE client (Figure 5), non-INVITE client (Figure 6), INVITE server
(Figure 7) and non-INVITE server (Figure 8) — and RFC 6026 changes the INVITE ones:
a 2xx moves them to a new Accepted state instead of Terminated, so retransmitted 2xx
responses (client) and ACKs (server) are absorbed/passed on instead of leaking out
as strays.

Each machine below is a table: (state, event) -> (new state, steps). Events are:
- from the network: "1xx", "2xx", "300-699" (responses), "request" (a retransmission
  of the transaction's request), "ACK";
- from the transaction user (TU): "TU 1xx", "TU 2xx", "TU 300-699" (server side);
- "timer A" ... "timer M" when a timer is due, and "transport error".
Steps are named after the RFC's words ("retransmit request", "start timer D"...).
A remote event the table does not list is absorbed (the RFC's figures absorb them, e.g.
a 1xx in Completed); a TU event it does not list is a programming error and raises
`TransactionStateError`. Each state also lists which timers live in it: entering a
state cancels the others (Figure 5: reaching Proceeding stops Timers A and B).

Sans-I/O in the aioquic manner: nothing here reads a clock or touches a socket. Every
call takes `now` (seconds, any epoch); `next_deadline()` says when the object next
needs `handle_timer(now)`. Calls return a list of actions for the caller to carry out:
`Send(message, destination)`, `Deliver(message)` to the TU, `Timeout`,
`TransportError`, `Terminated`, and from the `TransactionLayer`, `NoMatch` for
messages that belong to no transaction (new requests, ACKs for 2xx, stray responses).

Retransmission timers (A, E, G) run only over unreliable transports; over TCP/TLS the
RFC sets the "wait" timers D, I, J, K to zero, which here means the transition happens
within the same call (Table 4 of RFC 3261).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from simulator.sip import Request, Response, SipParseError
from simulator.sip.builders import MAGIC_COOKIE, make_response, request_within_invite_transaction

# --- configuration -------------------------------------------------------------------


@dataclass(frozen=True)
class TimerSettings:
    """RFC 3261 §17.1.1.1 / Table 4: T1 RTT estimate, T2 max retransmit interval, T4 max lifetime."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0


RELIABLE_TRANSPORTS = frozenset({"TCP", "TLS", "SCTP", "TLS-SCTP", "WS", "WSS"})


def is_reliable(transport: str | None) -> bool:
    return (transport or "UDP").upper() in RELIABLE_TRANSPORTS


# --- actions: what the caller must do --------------------------------------------------


@dataclass(frozen=True, eq=False)
class Send:
    """Hand `message` to the transport for `destination` (whatever the caller passed in).
    `transaction` is None for what the TU sends outside any transaction (ACK for a 2xx)."""

    message: Request | Response
    destination: Any
    transaction: Transaction | None = None


@dataclass(frozen=True, eq=False)
class Deliver:
    """Pass `message` up to the transaction user (a response, or an ACK for a 2xx)."""

    message: Request | Response
    transaction: Transaction


@dataclass(frozen=True, eq=False)
class Timeout:
    """Timer B/F (no final response) or H (no ACK) fired: the TU treats it as a 408."""

    transaction: Transaction
    timer: str


@dataclass(frozen=True, eq=False)
class TransportError:
    transaction: Transaction


@dataclass(frozen=True, eq=False)
class Terminated:
    transaction: Transaction


@dataclass(frozen=True, eq=False)
class NoMatch:
    """§17.1.3/§17.2.3: no transaction matches; the core decides (new server transaction,
    ACK for a 2xx to the dialog, stray response dropped)."""

    message: Request | Response
    source: Any


Action = Send | Deliver | Timeout | TransportError | Terminated | NoMatch


class TransactionStateError(Exception):
    """The TU asked for something the transaction's state does not allow."""


# --- the four machines, as tables -------------------------------------------------------

Rule = tuple[str, tuple[str, ...]]

# RFC 3261 Figure 5, with RFC 6026 §7.2 (2xx -> Accepted, Timer M).
INVITE_CLIENT: dict[tuple[str, str], Rule] = {
    ("Calling", "timer A"): ("Calling", ("retransmit request", "double timer A")),
    ("Calling", "timer B"): ("Terminated", ("inform TU of timeout",)),
    ("Calling", "1xx"): ("Proceeding", ("pass to TU",)),
    ("Calling", "2xx"): ("Accepted", ("pass to TU", "start timer M")),
    ("Calling", "300-699"): ("Completed", ("send ACK", "pass to TU", "start timer D")),
    ("Calling", "transport error"): ("Terminated", ("inform TU of transport error",)),
    ("Proceeding", "1xx"): ("Proceeding", ("pass to TU",)),
    ("Proceeding", "2xx"): ("Accepted", ("pass to TU", "start timer M")),
    ("Proceeding", "300-699"): ("Completed", ("send ACK", "pass to TU", "start timer D")),
    ("Proceeding", "transport error"): ("Terminated", ("inform TU of transport error",)),
    # §17.1.1.2: a retransmitted final response gets the ACK again, but is not passed up.
    ("Completed", "300-699"): ("Completed", ("send ACK",)),
    ("Completed", "transport error"): ("Terminated", ("inform TU of transport error",)),
    ("Completed", "timer D"): ("Terminated", ()),
    # RFC 6026 §8.4: every 2xx retransmission goes to the TU, which ACKs each one.
    ("Accepted", "2xx"): ("Accepted", ("pass to TU",)),
    ("Accepted", "timer M"): ("Terminated", ()),
}
INVITE_CLIENT_TIMERS = {"Calling": {"A", "B"}, "Proceeding": set(), "Completed": {"D"}, "Accepted": {"M"}}

# RFC 3261 Figure 6.
NON_INVITE_CLIENT: dict[tuple[str, str], Rule] = {
    ("Trying", "timer E"): ("Trying", ("retransmit request", "double timer E up to T2")),
    ("Trying", "timer F"): ("Terminated", ("inform TU of timeout",)),
    ("Trying", "transport error"): ("Terminated", ("inform TU of transport error",)),
    ("Trying", "1xx"): ("Proceeding", ("pass to TU",)),
    ("Trying", "2xx"): ("Completed", ("pass to TU", "start timer K")),
    ("Trying", "300-699"): ("Completed", ("pass to TU", "start timer K")),
    # §17.1.2.2: in Proceeding Timer E is reset to T2, not doubled.
    ("Proceeding", "timer E"): ("Proceeding", ("retransmit request", "reset timer E to T2")),
    ("Proceeding", "timer F"): ("Terminated", ("inform TU of timeout",)),
    ("Proceeding", "transport error"): ("Terminated", ("inform TU of transport error",)),
    ("Proceeding", "1xx"): ("Proceeding", ("pass to TU",)),
    ("Proceeding", "2xx"): ("Completed", ("pass to TU", "start timer K")),
    ("Proceeding", "300-699"): ("Completed", ("pass to TU", "start timer K")),
    ("Completed", "timer K"): ("Terminated", ()),
}
NON_INVITE_CLIENT_TIMERS = {"Trying": {"E", "F"}, "Proceeding": {"E", "F"}, "Completed": {"K"}}

# RFC 3261 Figure 7, with RFC 6026 §7.1 (TU 2xx -> Accepted, Timer L).
INVITE_SERVER: dict[tuple[str, str], Rule] = {
    ("Proceeding", "request"): ("Proceeding", ("resend last response",)),
    ("Proceeding", "TU 1xx"): ("Proceeding", ("send response",)),
    ("Proceeding", "TU 2xx"): ("Accepted", ("send response", "start timer L")),
    ("Proceeding", "TU 300-699"): ("Completed", ("send response", "start timer G", "start timer H")),
    ("Proceeding", "transport error"): ("Terminated", ("inform TU of transport error",)),
    ("Completed", "request"): ("Completed", ("resend last response",)),
    ("Completed", "timer G"): ("Completed", ("resend last response", "double timer G up to T2")),
    ("Completed", "ACK"): ("Confirmed", ("start timer I",)),
    ("Completed", "timer H"): ("Terminated", ("inform TU of timeout",)),
    ("Completed", "transport error"): ("Terminated", ("inform TU of transport error",)),
    ("Confirmed", "timer I"): ("Terminated", ()),
    # RFC 6026 §7.1: the TU retransmits its 2xx through the transaction; the ACKs for
    # it are passed up; a retransmitted INVITE is absorbed (the TU's 2xx covers it).
    ("Accepted", "TU 2xx"): ("Accepted", ("send response",)),
    ("Accepted", "ACK"): ("Accepted", ("pass to TU",)),
    ("Accepted", "timer L"): ("Terminated", ()),
}
INVITE_SERVER_TIMERS = {"Proceeding": set(), "Completed": {"G", "H"}, "Confirmed": {"I"}, "Accepted": {"L"}}

# RFC 3261 Figure 8.
NON_INVITE_SERVER: dict[tuple[str, str], Rule] = {
    ("Trying", "TU 1xx"): ("Proceeding", ("send response",)),
    ("Trying", "TU 2xx"): ("Completed", ("send response", "start timer J")),
    ("Trying", "TU 300-699"): ("Completed", ("send response", "start timer J")),
    ("Trying", "transport error"): ("Terminated", ("inform TU of transport error",)),
    ("Proceeding", "request"): ("Proceeding", ("resend last response",)),
    ("Proceeding", "TU 1xx"): ("Proceeding", ("send response",)),
    ("Proceeding", "TU 2xx"): ("Completed", ("send response", "start timer J")),
    ("Proceeding", "TU 300-699"): ("Completed", ("send response", "start timer J")),
    ("Proceeding", "transport error"): ("Terminated", ("inform TU of transport error",)),
    ("Completed", "request"): ("Completed", ("resend last response",)),
    ("Completed", "timer J"): ("Terminated", ()),
    ("Completed", "transport error"): ("Terminated", ("inform TU of transport error",)),
    # §17.2.2: further final responses from the TU are discarded in Completed.
    ("Completed", "TU 2xx"): ("Completed", ()),
    ("Completed", "TU 300-699"): ("Completed", ()),
}
NON_INVITE_SERVER_TIMERS = {"Trying": set(), "Proceeding": set(), "Completed": {"J"}}


_NO_TIMERS: frozenset[str] = frozenset()


def _send_response(tx: Transaction, message: Any) -> Action:
    tx.last_response = message
    return Send(message, tx.peer, tx)


# Steps that always make exactly one action (the rest go through Transaction._step).
_SIMPLE_STEPS: dict[str, Any] = {
    "pass to TU": lambda tx, message: Deliver(message, tx),
    "retransmit request": lambda tx, message: Send(tx.request, tx.peer, tx),
    "send response": _send_response,
    "inform TU of transport error": lambda tx, message: TransportError(tx),
}


def response_event(status: int) -> str:
    if status < 200:
        return "1xx"
    return "2xx" if status < 300 else "300-699"


# --- the machine --------------------------------------------------------------------------


class Transaction:
    """What the four machines share: a table, a state, timers and the step executor."""

    RULES: dict[tuple[str, str], Rule]
    TIMERS: dict[str, set[str]]
    INITIAL: str
    kind: str

    def __init__(self, request: Request, peer: Any, transport: str | None,
                 settings: TimerSettings, log: Any = None) -> None:
        self.request = request
        self.peer = peer  # where requests go (client) / where responses go (server)
        self.transport = (transport or request.top_via.transport or "UDP").upper()
        self.reliable = is_reliable(self.transport)
        self.settings = settings
        self.state = self.INITIAL
        self.last_response: Response | None = None
        self._deadlines: dict[str, float] = {}
        self._intervals: dict[str, float] = {}
        self._log = log
        via = request.top_via
        self.branch = via.branch or ""
        self.method = request.method

    @property
    def terminated(self) -> bool:
        return self.state == "Terminated"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.branch} {self.state}>"

    # --- time ---------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        deadlines = self._deadlines
        return min(deadlines.values()) if deadlines else None

    def handle_timer(self, now: float) -> list[Action]:
        """Fire every timer due at `now`, earliest first (a late call fires them all in order)."""
        actions: list[Action] = []
        while self._deadlines:
            name, deadline = min(self._deadlines.items(), key=lambda item: (item[1], item[0]))
            if deadline > now:
                break
            del self._deadlines[name]
            actions += self._event(f"timer {name}", deadline)
        return actions

    def transport_error(self, now: float) -> list[Action]:
        return self._event("transport error", now)

    # --- the executor -----------------------------------------------------------------
    def _event(self, event: str, now: float, message: Request | Response | None = None) -> list[Action]:
        rule = self.RULES.get((self.state, event))
        if rule is None:
            if event.startswith("TU "):
                raise TransactionStateError(f"{self!r}: the TU cannot send a {event[3:]} response now")
            return []  # absorbed, as the RFC figures do for anything they do not show
        new_state, steps = rule
        old_state = self.state
        self.state = new_state
        deadlines = self._deadlines
        if deadlines:
            alive = self.TIMERS.get(new_state, _NO_TIMERS)
            for name in [n for n in deadlines if n not in alive]:
                del deadlines[name]
        actions: list[Action] = []
        immediate: list[str] = []
        for step in steps:
            action = _SIMPLE_STEPS.get(step)
            if action is not None:  # the common steps, without the executor's chain of tests
                actions.append(action(self, message))
            else:
                actions += self._step(step, now, message, immediate, event)
        if new_state != old_state and self._log is not None:
            self._log.info("sip.transaction.state", kind=self.kind, method=self.method,
                           branch=self.branch, old=old_state, new=new_state, trigger=event)
        if new_state == "Terminated":
            self._deadlines.clear()
            actions.append(Terminated(self))
            return actions
        # Table 4: timers of zero length on reliable transports fire within this call.
        for name in immediate:
            if name in self._deadlines:
                del self._deadlines[name]
                actions += self._event(f"timer {name}", now)
        return actions

    def _step(self, step: str, now: float, message: Any, immediate: list[str],
              event: str = "") -> list[Action]:
        if step == "pass to TU":
            return [Deliver(message, self)]
        if step == "inform TU of timeout":
            return [Timeout(self, event.removeprefix("timer "))]
        if step == "inform TU of transport error":
            return [TransportError(self)]
        if step == "retransmit request":
            return [Send(self.request, self.peer, self)]
        if step == "send response":
            self.last_response = message
            return [Send(message, self.peer, self)]
        if step == "resend last response":
            return [Send(self.last_response, self.peer, self)] if self.last_response is not None else []
        if step == "send ACK":
            return [Send(ack_for_non_2xx(self.request, message), self.peer, self)]
        if step.startswith("start timer "):
            name = step[-1]
            duration = self._duration(name)
            if duration is not None:
                self._intervals[name] = duration
                self._deadlines[name] = now + duration
                if duration == 0:
                    immediate.append(name)
            return []
        if step.startswith("double timer "):
            name = step.split()[2]
            interval = self._intervals[name] * 2
            if step.endswith("up to T2"):
                interval = min(interval, self.settings.t2)
            self._intervals[name] = interval
            self._deadlines[name] = now + interval
            return []
        if step == "reset timer E to T2":
            self._intervals["E"] = self.settings.t2
            self._deadlines["E"] = now + self.settings.t2
            return []
        raise AssertionError(f"unknown step {step!r}")  # a typo in a table above

    def _duration(self, name: str) -> float | None:
        """RFC 3261 Table 4 (and RFC 6026 for L and M). None: the timer does not run."""
        s = self.settings
        if name in "AEG":  # retransmissions: unreliable transports only
            return None if self.reliable else s.t1
        if name in "BFHLM":
            return 64 * s.t1
        if name == "D":
            return 0.0 if self.reliable else max(32.0, 64 * s.t1)
        if name == "J":
            return 0.0 if self.reliable else 64 * s.t1
        if name in "IK":
            return 0.0 if self.reliable else s.t4
        raise AssertionError(name)


class ClientTransaction(Transaction):
    START_TIMERS: tuple[str, str]
    client_key: tuple[str, str] | None = None  # set by the layer that holds it
    def start(self, now: float) -> list[Action]:
        """§17.1.1.2/§17.1.2.2: send the request and start the timers of the initial state."""
        actions: list[Action] = [Send(self.request, self.peer, self)]
        for name in self.START_TIMERS:
            self._step(f"start timer {name}", now, None, [])
        if self._log is not None:
            self._log.info("sip.transaction.state", kind=self.kind, method=self.method,
                           branch=self.branch, old=None, new=self.state, trigger="request")
        return actions

    def receive_response(self, response: Response, now: float) -> list[Action]:
        return self._event(response_event(response.status), now, response)


class InviteClientTransaction(ClientTransaction):
    RULES, TIMERS, INITIAL, kind = INVITE_CLIENT, INVITE_CLIENT_TIMERS, "Calling", "invite client"
    START_TIMERS = ("A", "B")


class NonInviteClientTransaction(ClientTransaction):
    RULES, TIMERS, INITIAL, kind = NON_INVITE_CLIENT, NON_INVITE_CLIENT_TIMERS, "Trying", "non-invite client"
    START_TIMERS = ("E", "F")


class ServerTransaction(Transaction):
    server_key: tuple[str, str, int | None, str] | None = None  # None: matched the RFC 2543 way
    def send_response(self, response: Response, now: float) -> list[Action]:
        """The TU's response, sent to the request's source (§17.2.1/§17.2.2)."""
        return self._event("TU " + response_event(response.status), now, response)

    def receive_request(self, request: Request, now: float) -> list[Action]:
        return self._event("ACK" if request.method == "ACK" else "request", now, request)

    @property
    def to_tag(self) -> str | None:
        """The To tag of the response sent (RFC 2543 ACK matching, §17.2.3)."""
        return self.last_response.to.tag if self.last_response is not None else None

    def matches_rfc2543(self, request: Request) -> bool:
        """§17.2.3's fallback for requests whose branch lacks the magic cookie."""
        original = self.request
        try:
            common = (
                request.uri_text == original.uri_text
                and request.from_.tag == original.from_.tag
                and request.call_id == original.call_id
                and request.cseq.seq == original.cseq.seq
                and str(request.top_via) == str(original.top_via)
            )
            if not common:
                return False
            if request.method == "ACK":
                return original.method == "INVITE" and request.to.tag == self.to_tag
            return request.method == original.method and request.to.tag == original.to.tag
        except Exception:  # a header the message layer cannot read: it is not ours
            return False


class InviteServerTransaction(ServerTransaction):
    RULES, TIMERS, INITIAL, kind = INVITE_SERVER, INVITE_SERVER_TIMERS, "Proceeding", "invite server"


class NonInviteServerTransaction(ServerTransaction):
    RULES, TIMERS, INITIAL, kind = NON_INVITE_SERVER, NON_INVITE_SERVER_TIMERS, "Trying", "non-invite server"


# --- building the ACK for a non-2xx (§17.1.1.3) --------------------------------------------


def ack_for_non_2xx(invite: Request, response: Response) -> Request:
    """Request-URI, Call-ID, From and CSeq number of the INVITE; To of the response (with
    its tag); the INVITE's top Via only (same branch); its Route headers (§17.1.1.3)."""
    return request_within_invite_transaction(invite, "ACK", response.headers.get("To") or "")


# --- timers of many transactions ------------------------------------------------------------

Key = TypeVar("Key", bound=Hashable)


class DeadlineQueue(Generic[Key]):
    """The next deadline of many timed things without looking at each: a heap, earliest first.

    `deadline_of(key)` says when `key` is due now (None: not at all). After anything that may
    change it, `schedule(key)` queues the new deadline; an entry that no longer matches its
    key's deadline is dropped when it reaches the top, so nothing is ever searched or removed
    from the middle. Ties leave in the order they were queued (deterministic).

        queue = DeadlineQueue(lambda tx: tx.next_deadline())
        queue.schedule(tx); queue.next_deadline(); for tx in queue.pop_due(now): ...
    """

    def __init__(self, deadline_of: Callable[[Key], float | None]) -> None:
        self._deadline_of = deadline_of
        self._heap: list[tuple[float, int, Key]] = []
        self._queued: dict[Key, float] = {}  # key -> the deadline of its live entry
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def schedule(self, key: Key) -> None:
        deadline = self._deadline_of(key)
        if deadline is None:
            self._queued.pop(key, None)  # its entries, if any, are dropped when they reach the top
            return
        if self._queued.get(key) == deadline:
            return
        self._queued[key] = deadline
        heapq.heappush(self._heap, (deadline, next(self._order), key))

    def _live(self, deadline: float, key: Key) -> bool:
        return self._queued.get(key) == deadline and self._deadline_of(key) == deadline

    def _drop(self, deadline: float, key: Key) -> None:
        if self._queued.get(key) == deadline:
            del self._queued[key]

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap:
            deadline, _, key = heap[0]
            if self._live(deadline, key):
                return deadline
            heapq.heappop(heap)
            self._drop(deadline, key)
        return None

    def pop_due(self, now: float) -> list[Key]:
        """The keys due at `now`, earliest first; each leaves the queue (schedule it again after)."""
        heap = self._heap
        due: list[Key] = []
        while heap and heap[0][0] <= now:
            deadline, _, key = heapq.heappop(heap)
            if self._live(deadline, key):
                due.append(key)
            self._drop(deadline, key)
        return due


# --- matching (§17.1.3, §17.2.3) and the layer -----------------------------------------------


def client_key(message: Request | Response) -> tuple[str, str]:
    """§17.1.3: a response matches the client transaction with its top Via branch and CSeq method."""
    return (message.top_via.branch or "", message.cseq.method)


def server_key(request: Request) -> tuple[str, str, int | None, str] | None:
    """§17.2.3: branch + sent-by + method (ACK matches the INVITE); None for an RFC 2543
    request, whose branch lacks the magic cookie (or is the bare cookie, RFC 4475 §3.2.1)."""
    via = request.top_via
    branch = via.branch or ""
    if not branch.startswith(MAGIC_COOKIE) or branch == MAGIC_COOKIE:
        return None
    method = "INVITE" if request.method == "ACK" else request.method
    return (branch, via.host.lower(), via.port, method)


class TransactionLayer:
    """Holds a UA's (or proxy's) transactions, routes messages to them, owns no clock.

        layer = TransactionLayer(TimerSettings())
        tx, actions = layer.send_request(invite, destination, now)
        actions = layer.receive(message, source, now)     # NoMatch -> core decides
        tx, actions = layer.create_server(request, source, now)
        actions = layer.send_response(tx, response, now)
        at = layer.next_deadline(); actions = layer.handle_timer(at)

    Terminated transactions leave the layer by themselves. Their timers wait in one
    `DeadlineQueue`: finding the next deadline, which the endpoint does after every message,
    costs the same with ten transactions alive or ten thousand.
    """

    def __init__(self, settings: TimerSettings | None = None, log: Any = None) -> None:
        self.settings = settings or TimerSettings()
        self.log = log
        self.clients: dict[tuple[str, str], ClientTransaction] = {}
        self.servers: dict[tuple[str, str, int | None, str], ServerTransaction] = {}
        self.rfc2543_servers: list[ServerTransaction] = []
        self._timers: DeadlineQueue[Transaction] = DeadlineQueue(Transaction.next_deadline)

    # --- client side --------------------------------------------------------------------
    def send_request(self, request: Request, destination: Any, now: float,
                     transport: str | None = None) -> tuple[ClientTransaction, list[Action]]:
        """Start a client transaction for `request` (not ACK: an ACK is no transaction, §17)."""
        if request.method == "ACK":
            raise TransactionStateError("ACK is sent by the TU directly, not in a transaction (§17.1.1.3)")
        cls = InviteClientTransaction if request.method == "INVITE" else NonInviteClientTransaction
        tx = cls(request, destination, transport, self.settings, self.log)
        key = client_key(request)
        if key in self.clients:
            raise TransactionStateError(f"a client transaction {key} already exists: use a new branch")
        self.clients[key] = tx
        tx.client_key = key  # kept: the layer forgets it by this key when it ends
        return tx, self._reap(tx.start(now), tx)

    # --- server side --------------------------------------------------------------------
    def create_server(self, request: Request, source: Any, now: float, transport: str | None = None,
                      send_trying: bool = True) -> tuple[ServerTransaction, list[Action]]:
        """The core accepted a new request: make its server transaction.

        §17.2.1: an INVITE server transaction answers 100 Trying at once unless the TU
        will answer within 200 ms (`send_trying=False`)."""
        if request.method == "ACK":
            raise TransactionStateError("an ACK never creates a server transaction (§17.2.3)")
        cls = InviteServerTransaction if request.method == "INVITE" else NonInviteServerTransaction
        tx = cls(request, source, transport, self.settings, self.log)
        key = server_key(request)
        if key is None:
            self.rfc2543_servers.append(tx)
        else:
            self.servers[key] = tx
        tx.server_key = key
        if self.log is not None:
            self.log.info("sip.transaction.state", kind=tx.kind, method=tx.method,
                          branch=tx.branch, old=None, new=tx.state, trigger="request")
        actions: list[Action] = []
        if send_trying and request.method == "INVITE":
            actions = tx.send_response(make_response(request, 100), now)
        return tx, self._reap(actions, tx)

    def send_response(self, transaction: ServerTransaction, response: Response, now: float) -> list[Action]:
        return self._reap(transaction.send_response(response, now), transaction)

    def find_server(self, request: Request) -> ServerTransaction | None:
        """§17.2.3: the server transaction this request (a retransmission or ACK) belongs to."""
        key = server_key(request)
        if key is not None:
            return self.servers.get(key)
        for tx in self.rfc2543_servers:
            if tx.matches_rfc2543(request):
                return tx
        return None

    def find_cancel_target(self, cancel: Request) -> ServerTransaction | None:
        """§9.2: the INVITE server transaction a CANCEL refers to (same matching, method INVITE)."""
        key = server_key(cancel)
        if key is not None:
            return self.servers.get((key[0], key[1], key[2], "INVITE"))
        for tx in self.rfc2543_servers:
            original = tx.request
            if (original.method == "INVITE" and original.uri_text == cancel.uri_text
                    and original.from_.tag == cancel.from_.tag and original.to.tag == cancel.to.tag
                    and original.call_id == cancel.call_id and original.cseq.seq == cancel.cseq.seq
                    and str(original.top_via) == str(cancel.top_via)):
                return tx
        return None

    # --- both ----------------------------------------------------------------------------
    def receive(self, message: Request | Response, source: Any, now: float) -> list[Action]:
        """Route a received message to its transaction, or report NoMatch."""
        try:
            if message.top_via is None or message.cseq is None:
                return [NoMatch(message, source)]  # §8.2.6/§18.1.2: nothing to match or answer with
        except SipParseError:
            return [NoMatch(message, source)]
        if isinstance(message, Response):
            client = self.clients.get(client_key(message))
            if client is None:
                return [NoMatch(message, source)]
            return self._reap(client.receive_response(message, now), client)
        server = self.find_server(message)
        if server is None:
            return [NoMatch(message, source)]
        if message.method == "ACK" and server.method != "INVITE":
            return [NoMatch(message, source)]
        return self._reap(server.receive_request(message, now), server)

    def transport_error(self, transaction: Transaction, now: float) -> list[Action]:
        return self._reap(transaction.transport_error(now), transaction)

    def next_deadline(self) -> float | None:
        return self._timers.next_deadline()

    def handle_timer(self, now: float) -> list[Action]:
        """Fire the timers due at `now`, the transactions in the order of their deadlines."""
        actions: list[Action] = []
        for tx in self._timers.pop_due(now):
            actions += self._reap(tx.handle_timer(now), tx)
        return actions

    def transactions(self) -> Iterable[Transaction]:
        yield from self.clients.values()
        yield from self.servers.values()
        yield from self.rfc2543_servers

    def _reap(self, actions: list[Action], tx: Transaction) -> list[Action]:
        """After `tx` acted: queue its next timer, forget the transactions that ended."""
        self._timers.schedule(tx)
        for action in actions:
            if isinstance(action, Terminated):
                self._forget(action.transaction)
        return actions

    def _forget(self, tx: Transaction) -> None:
        if isinstance(tx, ClientTransaction):
            key = tx.client_key if tx.client_key is not None else client_key(tx.request)
            self.clients.pop(key, None)
        elif isinstance(tx, ServerTransaction) and tx.server_key is not None:
            self.servers.pop(tx.server_key, None)
        elif tx in self.rfc2543_servers:
            self.rfc2543_servers.remove(tx)
