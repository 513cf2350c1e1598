"""The one error a SIP peer's bad bytes can raise: `SipParseError`."""

from __future__ import annotations


class SipParseError(ValueError):
    """A message (or stream) that cannot be accepted as SIP.

    Like h11's `RemoteProtocolError.error_status_hint`, it carries what a server needs to
    answer instead of crashing. Its public attributes:

    - `status`: the status to answer with (400 naming the bad header, 505 for a SIP version
      other than 2.0, 513 for an oversized message ...);
    - `reason`: the reason phrase to send (text the parser wrote, not octets from the peer);
    - `octets`: the bytes to answer from, or None. `parse_message` leaves it None (the caller
      holds the datagram). `StreamParser` sets it to the framed message, or — for a framing
      error — to the head of the message it could not frame, so Via, From, To, Call-ID and
      CSeq can still be copied into the answer (RFC 3261 §8.2.6.1); None when not even a
      head was read (a connection that starts with garbage, say);
    - `fatal`: True when the stream cannot be framed any further (RFC 3261 §18.3): answer
      from `octets` if there are any, then close the connection. False for a message that
      framed correctly but does not parse: the stream goes on after it.

    `uas_checks.answer_unparseable(octets, error)` builds the answer (a Response, or None when
    there is nothing that may be answered). A response that fails to parse is simply dropped
    (RFC 3261 §18.1.2); the status is then only informative.
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.octets: bytes | None = None
        self.fatal = False

    def __repr__(self) -> str:
        return f"SipParseError({self.reason!r}, status={self.status})"
