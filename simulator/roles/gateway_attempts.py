"""The Direct Routing trunk failover rule for one call's gateways, as a sans-I/O machine.

Theory of operation

An outbound call is offered to the gateways of its route one at a time [S4][S5]. The attempt on a
gateway moves on to the next gateway when

- the gateway answers with one of its FailoverResponseCodes (default 408, 503, 504) before it has
  sent any provisional response other than 100 Trying (a failover after 180/183 would ring twice);
- its FailoverTimeSeconds (default 10) pass with no provisional response other than 100: the
  attempt is CANCELled (RFC 3261 §9.1) and the next gateway tried (Microsoft code 500001, 408);
- the gateway cannot be reached at all (connection refused, TLS refused, no answer to the INVITE).

Any other final response is the call's answer and is relayed. When no gateway is left, the call
gives up with the last attempt's status. Which response stops the timer is not documented beyond
"answered by the gateway"; a non-100 provisional stopping it follows the 180/183 rule above
(docs/ASSUMPTIONS.md).

The machine never reads a clock, sends or sleeps (as aioquic's connection): the role feeds it
events with `now` and carries out the `Decision`s; `timer_deadline` says when it wants
`timer_fired` next. The rules, per attempt state:

| state      | event                                | decision                                     |
|------------|--------------------------------------|----------------------------------------------|
| CALLING    | 100 Trying                           | WAIT                                         |
| CALLING    | other provisional                    | RELAY_PROVISIONAL, -> PROCEEDING (timer off) |
| PROCEEDING | provisional other than 100           | RELAY_PROVISIONAL                            |
| CALLING    | a FailoverResponseCode               | TRY_NEXT, or GIVE_UP(status) on the last one |
| CALLING    | timer_fired at or after the deadline | cancel + TRY_NEXT, or cancel + GIVE_UP(408)  |
| CALLING    | unreachable                          | TRY_NEXT, or GIVE_UP(None)                   |
| any        | any other final response             | RELAY_FINAL                                  |
| CANCELLING | 2xx (it crossed our CANCEL)          | RELAY_FINAL: the call is answered after all  |
| CANCELLING | other final, provisional, timer      | WAIT (the decision was made already)         |
| PROCEEDING | timer_fired                          | WAIT                                         |

    attempts = GatewayAttempts([("sbc1.contoso.com", FailoverRule({408, 503, 504}, 10))])
    attempts.next_gateway(now)               # -> "sbc1.contoso.com"; send the INVITE
    attempts.response(503, now)              # -> Decision(TRY_NEXT or GIVE_UP, status=503)
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FailoverRule:
    """A gateway's FailoverResponseCodes and FailoverTimeSeconds (New-CsOnlinePSTNGateway [S4])."""

    response_codes: Collection[int]
    time_seconds: float


class Action(enum.Enum):
    WAIT = "wait"  # nothing to do
    RELAY_PROVISIONAL = "relay_provisional"  # the caller hears this provisional response
    RELAY_FINAL = "relay_final"  # this final response is the call's answer
    TRY_NEXT = "try_next"  # this gateway is passed over: call next_gateway() and try it
    GIVE_UP = "give_up"  # no gateway is left: the call fails with `status`


class FailoverCause(enum.Enum):
    """Why a gateway was passed over."""

    FAILOVER_CODE = "failover_code"
    TIMER_EXPIRED = "timer_expired"
    UNREACHABLE = "unreachable"


class AttemptState(enum.Enum):
    IDLE = "idle"  # no attempt in progress
    CALLING = "calling"  # INVITE sent, nothing but 100 Trying heard
    PROCEEDING = "proceeding"  # a provisional other than 100 came: the failover rule is off
    CANCELLING = "cancelling"  # the failover timer expired: the attempt is being CANCELled
    DONE = "done"  # a final response or a failure ended the attempt


@dataclass(frozen=True)
class Decision:
    action: Action
    cancel: bool = False  # CANCEL the attempt in progress before acting
    status: int | None = None  # the response (or, giving up, the call's status; None: unreachable)
    cause: FailoverCause | None = None  # why the gateway was passed over (TRY_NEXT, GIVE_UP)


WAIT = Decision(Action.WAIT)

#: the status of a failover timer expiry (Microsoft code 500001 [S11])
TIMER_EXPIRED_STATUS = 408


class GatewayAttempts:
    """The gateways of one call in failover order and the state of the attempt on the current one."""

    def __init__(self, gateways: Sequence[tuple[str, FailoverRule]]) -> None:
        self._gateways = list(gateways)
        self._index = -1
        self.state = AttemptState.IDLE
        self._deadline: float | None = None

    @property
    def gateway(self) -> str | None:
        """The gateway of the current (or last) attempt."""
        return self._gateways[self._index][0] if self._index >= 0 else None

    @property
    def rule(self) -> FailoverRule | None:
        return self._gateways[self._index][1] if self._index >= 0 else None

    @property
    def remaining(self) -> tuple[str, ...]:
        """The gateways still to try after the current one, in order."""
        return tuple(g for g, _ in self._gateways[self._index + 1:])

    @property
    def progressed(self) -> bool:
        """A provisional response other than 100 came on the current attempt."""
        return self.state is AttemptState.PROCEEDING

    @property
    def timer_deadline(self) -> float | None:
        """When the current attempt's failover timer expires; None when it is not running."""
        return self._deadline if self.state is AttemptState.CALLING else None

    def next_gateway(self, now: float) -> str | None:
        """Start the attempt on the next gateway (its timer runs from `now`); None when none is left."""
        if self._index + 1 >= len(self._gateways):
            self.state = AttemptState.DONE
            return None
        self._index += 1
        self.state = AttemptState.CALLING
        self._deadline = now + self._gateways[self._index][1].time_seconds
        return self._gateways[self._index][0]

    def response(self, status: int, now: float) -> Decision:
        """A response to the current attempt's INVITE."""
        if status < 200:
            if status == 100 or self.state not in (AttemptState.CALLING, AttemptState.PROCEEDING):
                return WAIT
            self.state = AttemptState.PROCEEDING
            return Decision(Action.RELAY_PROVISIONAL, status=status)
        if self.state is AttemptState.CANCELLING:
            if status < 300:  # the 2xx crossed our CANCEL: the call is answered after all
                self.state = AttemptState.DONE
                return Decision(Action.RELAY_FINAL, status=status)
            return WAIT
        if self.state is AttemptState.CALLING and status in self.rule.response_codes:  # type: ignore[union-attr]
            return self._pass_over(FailoverCause.FAILOVER_CODE, status)
        self.state = AttemptState.DONE
        return Decision(Action.RELAY_FINAL, status=status)

    def timer_fired(self, now: float) -> Decision:
        """The role's timer went off; acts only when the current attempt's deadline has passed."""
        deadline = self.timer_deadline
        if deadline is None or now < deadline:
            return WAIT
        decision = self._pass_over(FailoverCause.TIMER_EXPIRED, TIMER_EXPIRED_STATUS)
        self.state = AttemptState.CANCELLING
        return Decision(decision.action, cancel=True, status=decision.status, cause=decision.cause)

    def unreachable(self, now: float) -> Decision:
        """The current gateway could not be reached, or refused the attempt before any response."""
        if self.state in (AttemptState.DONE, AttemptState.IDLE, AttemptState.CANCELLING):
            return WAIT
        return self._pass_over(FailoverCause.UNREACHABLE, None)

    def _pass_over(self, cause: FailoverCause, status: int | None) -> Decision:
        self.state = AttemptState.DONE
        action = Action.TRY_NEXT if self.remaining else Action.GIVE_UP
        return Decision(action, status=status, cause=cause)
