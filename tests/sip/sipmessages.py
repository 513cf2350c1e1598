"""Messages the transaction/dialog tests send, built through the real parser."""

from __future__ import annotations

from simulator.sip import Request, Response, parse_message
from simulator.sip.builders import make_response
from simulator.sip.transaction import Send, TransactionLayer


def request(method: str = "INVITE", *, branch: str | None = "z9hG4bKabc123", transport: str = "UDP",
            sent_by: str = "client.example.com:5060", cseq: int = 1, cseq_method: str | None = None,
            from_tag: str | None = "fromtag", to_tag: str | None = None,
            uri: str = "sip:bob@server.example.com", call_id: str = "call-1@client.example.com") -> Request:
    via = f"SIP/2.0/{transport} {sent_by}" + (f";branch={branch}" if branch else "")
    from_ = "<sip:alice@client.example.com>" + (f";tag={from_tag}" if from_tag else "")
    to = "<sip:bob@server.example.com>" + (f";tag={to_tag}" if to_tag else "")
    text = (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: {via}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: {from_}\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {cseq_method or method}\r\n"
        "Contact: <sip:alice@192.0.2.1:5060>\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def response(req: Request, status: int, *, to_tag: str | None = "totag") -> Response:
    """A response to `req` as the peer would send it, through bytes and the parser."""
    built = make_response(req, status, to_tag=to_tag if status > 100 else None,
                          contact="<sip:bob@192.0.2.2:5060>")
    message = parse_message(built.to_bytes())
    assert isinstance(message, Response)
    return message


def run_timers(layer: TransactionLayer, until: float) -> list[tuple[float, object]]:
    """Fire every deadline up to `until`; return (time, action) pairs."""
    fired: list[tuple[float, object]] = []
    while (deadline := layer.next_deadline()) is not None and deadline <= until:
        fired += [(deadline, action) for action in layer.handle_timer(deadline)]
    return fired


def send_times(fired: list[tuple[float, object]]) -> list[float]:
    return [round(t, 6) for t, action in fired if isinstance(action, Send)]
