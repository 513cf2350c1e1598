"""A synthetic event stream shaped like a branch outage, built with the real EventLog (no roles needed)."""

from __future__ import annotations

from simulator.events import EventLog

SBC, PROXY, CAROL = "10.20.0.10", "52.114.0.1", "10.20.1.21"


def invite(call_id: str, seq: int = 1) -> str:
    return (f"INVITE sip:+14255550100@sip.pstnhub.microsoft.com SIP/2.0\r\n"
            f"Via: SIP/2.0/TLS sbc-sea.contoso.com:5061;branch=z9hG4bK{call_id}\r\n"
            f"From: <sip:+12065550201@sbc-sea.contoso.com>;tag=a1\r\nTo: <sip:+14255550100@contoso.com>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {seq} INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")


def response(call_id: str, status: int, reason: str, seq: int = 1) -> str:
    return (f"SIP/2.0 {status} {reason}\r\nVia: SIP/2.0/TLS sbc-sea.contoso.com:5061;branch=z9hG4bK{call_id}\r\n"
            f"From: <sip:+12065550201@sbc-sea.contoso.com>;tag=a1\r\nTo: <sip:+14255550100@contoso.com>;tag=b2\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {seq} INVITE\r\nContent-Length: 0\r\n\r\n")


def options_udp(call_id: str) -> str:
    return (f"OPTIONS sip:{PROXY}:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {SBC}:5060;branch=z9hG4bK{call_id}\r\n"
            f"From: <sip:ping@{SBC}>;tag=x\r\nTo: <sip:{PROXY}>\r\nCall-ID: {call_id}\r\nCSeq: 7 OPTIONS\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")


def outage_log() -> EventLog:
    """Two clients: carol detected at 32 s after a cut at 100 s, dave at 40 s; restore at 400 s."""
    now = [0.0]
    log = EventLog(clock=lambda: now[0])

    def at(t: float, event: str, **fields) -> None:
        now[0] = t
        log.logger().info(event, **fields)

    for user in ("carol@contoso.com", "dave@contoso.com"):
        at(1.0, "client.state", node=user.split("@")[0], user=user, state="online", registrar="sip.pstnhub.microsoft.com")
    # a call over TLS, both sides logging
    for t, node, ev, src, dst, msg, summary in [
        (5.0, "sbc-sea", "sip.sent", f"{SBC}:40001", f"{PROXY}:5061", invite("c1"), "INVITE sip:+14255550100@sip.pstnhub.microsoft.com"),
        (5.02, "sip", "sip.received", f"{SBC}:40001", f"{PROXY}:5061", invite("c1"), "INVITE sip:+14255550100@sip.pstnhub.microsoft.com"),
        (5.5, "sip", "sip.sent", f"{PROXY}:5061", f"{SBC}:40001", response("c1", 200, "OK"), "200 OK"),
        (5.52, "sbc-sea", "sip.received", f"{PROXY}:5061", f"{SBC}:40001", response("c1", 200, "OK"), "200 OK"),
    ]:
        at(t, ev, node=node, transport="tls", src=src, dst=dst, conn="k1", call_id="c1",
           cseq="1 INVITE", summary=summary, message=msg)
    at(5.5, "call.answered", node="sbc-sea", call_id="c1", caller="+12065550201", callee="+14255550100",
       status=200, path=["sbc-sea", "sip"])
    # an OPTIONS over UDP (not a call: no ladder)
    at(60.0, "sip.sent", node="sbc-sea", transport="udp", src=f"{SBC}:5060", dst=f"{PROXY}:5060", conn=None,
       call_id="o1", cseq="7 OPTIONS", summary=f"OPTIONS sip:{PROXY}:5060", message=options_udp("o1"))
    at(100.0, "link.down", link="wan-seattle", previous="up", reset=3)
    # an INVITE lost in the outage: sent, never received
    at(101.0, "sip.sent", node="sbc-sea", transport="tls", src=f"{SBC}:40002", dst=f"{PROXY}:5061", conn="k2",
       call_id="c2", cseq="1 INVITE", summary="INVITE sip:+14255550100@sip.pstnhub.microsoft.com", message=invite("c2"))
    at(132.0, "client.state", node="carol", user="carol@contoso.com", state="offline", registrar=None)
    at(135.5, "client.state", node="carol", user="carol@contoso.com", state="appliance", registrar="sba1.contoso.com")
    at(140.0, "client.state", node="dave", user="dave@contoso.com", state="appliance", registrar="sba1.contoso.com")
    at(400.0, "gateway.health", node="sip", gateway="sbc-sea.contoso.com", state="demoted")
    at(400.0, "link.up", link="wan-seattle", previous="down")
    at(410.0, "client.state", node="dave", user="dave@contoso.com", state="online", registrar="sip.pstnhub.microsoft.com")
    at(425.25, "client.state", node="carol", user="carol@contoso.com", state="online", registrar="sip2.pstnhub.microsoft.com")
    return log
