"""The one error a SIP peer's bad bytes can raise: `SipParseError`."""

from __future__ import annotations


class SipParseError(ValueError):
    """A message (or stream) that cannot be accepted as SIP.

    Like h11's `RemoteProtocolError.error_status_hint`, it carries the response a UAS would
    answer with, so a server replies instead of crashing: `.status` (400 naming the bad header,
    505 for a SIP version other than 2.0, 513 for an oversized message ...) and `.reason`, the
    reason phrase to send. A response that fails to parse is simply dropped (RFC 3261 §18.1.2);
    the status is then only informative.
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status

    def __repr__(self) -> str:
        return f"SipParseError({self.reason!r}, status={self.status})"
