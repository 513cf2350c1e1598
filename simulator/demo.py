"""`make demo`: a real SIP call between two user agents, printed as a ladder.

Until the scenario runner exists this is the demo: alice calls bob, bob rings and
answers, alice puts the call on hold with a re-INVITE, then hangs up. Every line is a
datagram one sans-I/O `UserAgent` produced (`to_bytes()`) and the other parsed back
(`parse_message`) — transactions, dialogs and SDP offer/answer all run for real, on a
virtual clock with 20 ms one-way latency, so the run takes milliseconds and is the same
every time.
"""

from __future__ import annotations

import heapq
import random
import sys
from collections.abc import Callable

from simulator.events import EventLog
from simulator.sip import Request, parse_message
from simulator.sip.sdp import SdpError, SessionDescription
from simulator.sip.transaction import Send
from simulator.sip.user_agent import UserAgent

LATENCY = 0.020


def _sdp_note(message) -> str:
    if not message.body:
        return ""
    try:
        sdp = SessionDescription.parse(message.body)
    except SdpError:
        return "  [body]"
    audio = sdp.audio
    if audio is None:
        return "  [SDP: no audio]"
    codecs = ",".join(c.name for c in audio.codecs)
    return f"  [SDP {sdp.connection_of(audio).address}:{audio.port} {codecs} {sdp.direction_of(audio)}]"


def run(out=sys.stdout) -> int:
    now = 0.0
    log = EventLog(clock=lambda: now)
    alice = UserAgent("alice", "192.0.2.10", 5060, rng=random.Random(1), ring_time=1.5,
                      media_port=40000, log=log.logger(node="alice"))
    bob = UserAgent("bob", "192.0.2.20", 5060, rng=random.Random(2), ring_time=1.5,
                    media_port=50000, log=log.logger(node="bob"))
    agents = {(ua.host, ua.port): ua for ua in (alice, bob)}
    wire: list[tuple[float, int, tuple[str, int], tuple[str, int], bytes]] = []
    sequence = 0
    sent = 0

    def transmit(sender: UserAgent, sends: list[Send]) -> None:
        nonlocal sequence, sent
        for send in sends:
            data = send.message.to_bytes()
            first_line = data.split(b"\r\n", 1)[0].decode()
            arrow = "──────────────▶" if sender is alice else "◀──────────────"
            print(f"{now:8.3f}s  alice {arrow} bob    {first_line}{_sdp_note(send.message)}", file=out)
            sequence += 1
            sent += 1
            heapq.heappush(wire, (now + LATENCY, sequence, (sender.host, sender.port), send.destination, data))

    call = None

    def place_call() -> None:
        nonlocal call
        call, sends = alice.call("sip:bob@192.0.2.20:5060", now)
        transmit(alice, sends)

    script: list[tuple[float, str, Callable[[], None]]] = [
        (0.0, "alice calls bob", place_call),
        (4.0, "alice puts bob on hold", lambda: transmit(alice, alice.hold(call, now))),
        (7.0, "alice hangs up", lambda: transmit(alice, alice.hang_up(call, now))),
    ]
    print("    time   alice (192.0.2.10)     bob (192.0.2.20)", file=out)
    while True:
        candidates = [t for t in (script[0][0] if script else None,
                                  wire[0][0] if wire else None,
                                  alice.next_deadline(), bob.next_deadline()) if t is not None]
        if not candidates:
            break
        now = min(candidates)
        if script and script[0][0] <= now:
            _, what, step = script.pop(0)
            print(f"{now:8.3f}s  -- {what}", file=out)
            step()
        elif wire and wire[0][0] <= now:
            _, _, source, destination, data = heapq.heappop(wire)
            receiver = agents[destination]
            transmit(receiver, receiver.receive(data, source, now))
        else:
            for ua in (alice, bob):
                deadline = ua.next_deadline()
                if deadline is not None and deadline <= now:
                    transmit(ua, ua.handle_timer(now))
    assert call is not None
    dialog = call.dialog
    parsed_back = isinstance(parse_message(call.invite.to_bytes()), Request)
    print(f"\n{sent} messages, call {call.state}, dialog {dialog.state if dialog else None}, "
          f"{len(log.records)} events logged, last transaction ended at {now:.3f}s (virtual)", file=out)
    ok = call.state == "ended" and dialog is not None and dialog.state == "Terminated" and parsed_back
    return 0 if ok else 1


def main() -> None:
    raise SystemExit(run())


if __name__ == "__main__":
    main()
