"""Sans-I/O SIP core: messages, headers and URIs (this package's message layer), plus the
transaction, dialog and SDP modules built on it. No asyncio, no sockets, no clock.

    from simulator.sip import parse_message, SipParseError, StreamParser, Request, Response
"""

from .errors import SipParseError
from .fields import CSeq, NameAddr, Via, parse_cseq, parse_name_addr, parse_via
from .headers import COMPACT_FORMS, Headers
from .message import REASON_PHRASES, Message, Request, Response
from .parser import StreamParser, parse_message
from .uri import AbsoluteUri, SipUri, TelUri, parse_uri

__all__ = [
    "COMPACT_FORMS",
    "REASON_PHRASES",
    "AbsoluteUri",
    "CSeq",
    "Headers",
    "Message",
    "NameAddr",
    "Request",
    "Response",
    "SipParseError",
    "SipUri",
    "StreamParser",
    "TelUri",
    "Via",
    "parse_cseq",
    "parse_message",
    "parse_name_addr",
    "parse_uri",
    "parse_via",
]
