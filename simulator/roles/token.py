"""The lab's stand-in for a Teams client's Entra ID access token, as a SIP header.

Real clients authenticate to the cloud and to an SBA with an OAuth access token; what matters
to failover is only who it names and when it expires (the SBA accepts an expired token for up
to 7 days [S26]). So the lab token is plain text in the Authorization header:

    Authorization: Bearer upn=carol@contoso.com;issued=120.0;expires=3720.0;cae=0

Times are the lab's virtual seconds. `Token.parse` raises ValueError with what was expected,
so a registrar answers 400 or 401 instead of crashing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Token:
    upn: str
    issued: float
    expires: float
    cae: bool = False

    @classmethod
    def issue(cls, upn: str, now: float, lifetime_s: float, *, cae: bool = False) -> Token:
        return cls(upn.lower(), now, now + lifetime_s, cae)

    def expired(self, now: float) -> bool:
        return now >= self.expires

    def header(self) -> str:
        return f"Bearer upn={self.upn};issued={self.issued!r};expires={self.expires!r};cae={int(self.cae)}"

    @classmethod
    def parse(cls, header: str | None) -> Token:
        if not header:
            raise ValueError("no Authorization header: expected 'Bearer upn=...;issued=...;expires=...'")
        scheme, _, rest = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise ValueError(f"Authorization scheme {scheme!r}: expected Bearer")
        fields: dict[str, str] = {}
        for part in rest.split(";"):
            key, sep, value = part.strip().partition("=")
            if not sep:
                raise ValueError(f"token part {part!r}: expected key=value")
            fields[key] = value
        try:
            return cls(fields["upn"].lower(), float(fields["issued"]), float(fields["expires"]),
                       fields.get("cae", "0") == "1")
        except KeyError as missing:
            raise ValueError(f"token lacks {missing.args[0]!r}: expected upn, issued, expires") from None
        except ValueError:
            raise ValueError(f"token times must be numbers: {rest!r}") from None
