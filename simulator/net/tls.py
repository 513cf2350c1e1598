"""Mutual TLS for Direct Routing over any asyncio stream transport, with named refusals.

API (what the networks, the SIP transport layer and the roles call):

    policy = TlsPolicy()                        # Direct Routing: TLS 1.2 only, the 4 ECDHE-RSA suites
    policy = TlsPolicy.pstn()                   # TLS 1.2-1.3 (a carrier trunk)
    policy = policy.with_keylog_from_env()      # key log to $SSLKEYLOGFILE; `upgrade` does this
                                                # by itself on any transport not from the sim network

    tls_transport, peer = await upgrade(
        transport, protocol, policy=policy, identity=pki.identity("sbc1.contoso.com"),
        trust=pki.ca_path, server_side=False, peer_name="sip.pstnhub.microsoft.com", log=log)

A server may pass `identity={fqdn: Identity, ...}` to present the certificate the client named
in SNI. `transport` is an established plain stream (sim or real) nobody has read from yet — an
accepting side should use `HoldingProtocol` (or call `transport.pause_reading()` in
`connection_made`) so the ClientHello waits for the upgrade. `protocol` is the application
protocol that will use `tls_transport`; like `loop.start_tls`, its `connection_made` is NOT
called. `upgrade` raises `TlsRefused(reason, detail, by_peer=...)` and logs an event on every
failure; on success it logs `tls.established` and returns a `PeerInfo`.

Refusals (event name = reason, on the side that refused, fields side/peer/detail):
  tls.expired, tls.not_yet_valid   OpenSSL verify codes 10 / 9
  tls.unknown_ca                   codes 2, 18, 19, 20, 21 (untrusted root, missing intermediate)
  tls.bad_eku                      code 26 (the role's EKU, checked in the handshake) or a
                                   `required_eku` missing after it (Direct Routing: both)
  tls.name_mismatch                code 62 on a client (OpenSSL's RFC 6125 check), or after the
                                   handshake on a server given a `peer_name`
  tls.no_client_cert               a mutual-TLS server got no client certificate
  tls.protocol_version             no TLS version in common (e.g. a 1.1 or 1.3-only client)
Other failures: tls.handshake_failed (e.g. no shared cipher, not TLS at all),
tls.handshake_timeout, tls.connection_lost.

The other side sees the failure too: asyncio normally drops the TLS alert OpenSSL queued when a
handshake fails (sslproto closes the transport first); `upgrade` flushes it, so the peer gets
the alert (RFC 5246 §7.2.2, RFC 8446 §6.2) and logs `tls.refused_by_peer` with the `alert` and,
where the alert names it unambiguously, the `reason`. Refusals made after the handshake
(server-side name check, `required_eku`) cannot carry an alert from Python: the refusing side
aborts and the peer sees its connection reset. Under TLS 1.3 a client finishes its handshake
before the server has judged the client certificate (RFC 8446 §4.4.2), so such a client learns
of the refusal as `connection_lost(SSLError)` on its first read; `peer_refusal(exc)` names it.

Name rules (RFC 6125 §6.4, RFC 2818 §3.1, [S1][S2]; tags: docs/SOURCES.md): DNS SANs first; the
CN only when the certificate has no DNS SAN at all (`cn_fallback`, on by default because Teams
accepts the FQDN "in CN or SAN"); a wildcard only as the whole left-most label, matching exactly
one label.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import os
import ssl
import warnings
import weakref
from asyncio import sslproto
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography import x509

from simulator.pki import issue
from simulator.pki.store import Identity

# [S8][S34]: the suites Direct Routing accepts, in OpenSSL's names (TLS 1.2 and below;
# TLS 1.3 suites are not configurable from Python and stay OpenSSL's defaults).
DIRECT_ROUTING_CIPHERS = ":".join((
    "ECDHE-RSA-AES256-GCM-SHA384",  # TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
    "ECDHE-RSA-AES128-GCM-SHA256",  # TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    "ECDHE-RSA-AES256-SHA384",  # TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384
    "ECDHE-RSA-AES128-SHA256",  # TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256
))

REFUSAL_REASONS = (
    "tls.expired",
    "tls.not_yet_valid",
    "tls.name_mismatch",
    "tls.unknown_ca",
    "tls.no_client_cert",
    "tls.bad_eku",
    "tls.protocol_version",
)
OTHER_FAILURES = ("tls.handshake_failed", "tls.handshake_timeout", "tls.connection_lost")

# X509_V_ERR_* (openssl/x509_vfy.h) → reason.
_VERIFY_CODES = {
    2: "tls.unknown_ca",  # UNABLE_TO_GET_ISSUER_CERT
    9: "tls.not_yet_valid",  # CERT_NOT_YET_VALID
    10: "tls.expired",  # CERT_HAS_EXPIRED
    18: "tls.unknown_ca",  # DEPTH_ZERO_SELF_SIGNED_CERT
    19: "tls.unknown_ca",  # SELF_SIGNED_CERT_IN_CHAIN
    20: "tls.unknown_ca",  # UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    21: "tls.unknown_ca",  # UNABLE_TO_VERIFY_LEAF_SIGNATURE
    26: "tls.bad_eku",  # INVALID_PURPOSE
    62: "tls.name_mismatch",  # HOSTNAME_MISMATCH
}
# OpenSSL error reasons raised on the side that refused.
_LOCAL_REASONS = {
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "tls.no_client_cert",
    "UNSUPPORTED_PROTOCOL": "tls.protocol_version",
    "VERSION_TOO_LOW": "tls.protocol_version",
    "VERSION_TOO_HIGH": "tls.protocol_version",
    "NO_PROTOCOLS_AVAILABLE": "tls.protocol_version",
}
# Alerts received from the side that refused (RFC 5246 §7.2.2, RFC 8446 §6.2) and what they
# tell unambiguously. OpenSSL sends bad_certificate for both not-yet-valid and a name mismatch,
# so that alert names no reason.
_ALERT_REASONS = {
    "certificate_expired": "tls.expired",
    "unknown_ca": "tls.unknown_ca",
    "unsupported_certificate": "tls.bad_eku",
    "protocol_version": "tls.protocol_version",
    "certificate_required": "tls.no_client_cert",
    "bad_certificate": None,
    "certificate_unknown": None,
    "handshake_failure": None,
}


class TlsRefused(ConnectionError):
    """A TLS connection that did not come up. `reason` is one of REFUSAL_REASONS or
    OTHER_FAILURES; `by_peer` is True when the other side refused and told us with `alert`.
    A connection that just ended (reset, FIN, link cut) is tls.connection_lost, by nobody in particular."""

    def __init__(self, reason: str, detail: str, *, by_peer: bool = False, alert: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.by_peer = by_peer
        self.alert = alert


@dataclass(frozen=True)
class TlsPolicy:
    """How one listener or connection does TLS. The default is Direct Routing ([S1][S8])."""

    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    ciphers: str = DIRECT_ROUTING_CIPHERS
    mutual: bool = True  # a server requires a client certificate (CERT_REQUIRED both ways)
    cn_fallback: bool = True  # use the CN when the certificate has no DNS SAN
    required_eku: tuple[str, ...] = ("serverAuth", "clientAuth")  # on the peer, whatever its role
    handshake_timeout: float = 10.0
    keylog_filename: str | None = None

    @classmethod
    def direct_routing(cls) -> TlsPolicy:
        return cls()

    @classmethod
    def pstn(cls) -> TlsPolicy:
        """A carrier trunk: TLS 1.2 or 1.3, role-based EKU only."""
        return cls(max_version=ssl.TLSVersion.TLSv1_3, required_eku=())

    @classmethod
    def legacy_tls11(cls) -> TlsPolicy:
        """An outdated SBC: TLS 1.1 only (what Direct Routing refuses since April 2022, [S8]).
        OpenSSL 3 allows TLS < 1.2 only at security level 0."""
        return cls(min_version=ssl.TLSVersion.TLSv1_1, max_version=ssl.TLSVersion.TLSv1_1,
                   ciphers="ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:@SECLEVEL=0")

    def with_keylog_from_env(self) -> TlsPolicy:
        """Write TLS secrets to $SSLKEYLOGFILE (NSS key log format; Wireshark/tshark decrypt with it)."""
        return replace(self, keylog_filename=os.environ.get("SSLKEYLOGFILE") or None)


@dataclass(frozen=True)
class PeerInfo:
    """What the handshake established about the other side."""

    version: str
    cipher: str
    dns_names: tuple[str, ...]
    common_name: str
    eku: tuple[str, ...]
    not_after: dt.datetime | None
    issuer: str
    sni: str | None  # on a server: the name the client asked for
    certificate: x509.Certificate | None

    def matches(self, name: str, *, cn_fallback: bool = True) -> bool:
        """Does the peer's certificate name `name`? The proxy's tenant lookup ([S2], its
        first step) asks this of the Contact FQDN."""
        return self.certificate is not None and certificate_matches(self.certificate, name, cn_fallback=cn_fallback)


def certificate_matches(cert: x509.Certificate, name: str, *, cn_fallback: bool = True) -> bool:
    """RFC 6125 §6.4 host-name check, the same rules OpenSSL applies on a client."""
    names = issue.dns_names(cert)
    if not names and cn_fallback:
        names = (issue.common_name(cert),) if issue.common_name(cert) else ()
    return any(_dns_match(pattern, name) for pattern in names)


def _dns_match(pattern: str, name: str) -> bool:
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern.startswith("*."):
        # RFC 6125 §6.4.3: the wildcard is the whole left-most label and covers exactly one label;
        # like OpenSSL, never directly under a top-level domain.
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:] and pattern.count(".") >= 2
    return "*" not in pattern and pattern == name


class HoldingProtocol(asyncio.Protocol):
    """For an accepted/connected plain stream that is about to be upgraded: pauses reading at
    once, so the peer's first TLS record waits in the transport for `upgrade`."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.pause_reading()  # type: ignore[attr-defined]

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


async def upgrade(
    transport: asyncio.Transport,
    protocol: asyncio.BaseProtocol,
    *,
    policy: TlsPolicy,
    identity: Identity | Mapping[str, Identity] | None,
    trust: str | os.PathLike[str],
    server_side: bool,
    peer_name: str | None = None,
    log: Any,
) -> tuple[asyncio.Transport, PeerInfo]:
    """Run the TLS handshake on `transport` and every Direct Routing check; see the module doc.

    `identity` is our certificate chain + key (required on a server; None on a client sends no
    certificate). A server may give {fqdn: Identity}: it presents the one the client named in
    SNI (RFC 6066 §3), or the first when the client named none or another. `trust` is the CA
    file we verify the peer against. `peer_name` is the FQDN the connection is meant for: a
    client sends it as SNI and checks the server certificate against it; a server given one
    checks the client certificate after the handshake. `log` is an EventLogger from
    `EventLog.logger(node=...)`."""
    if server_side and not identity:
        raise ValueError("a TLS server needs an identity (certificate chain and key)")
    if isinstance(identity, Mapping):
        if not server_side:
            raise ValueError("a TLS client presents one identity, not a choice by SNI")
        identities = tuple((name.lower(), ident) for name, ident in identity.items())
    else:
        identities = ((identity.fqdn, identity),) if identity is not None else ()
    loop = asyncio.get_running_loop()
    side = "server" if server_side else "client"
    address = transport.get_extra_info("peername")
    fields = {"side": side, "peer": peer_name or _address(address)}

    def failed(refused: TlsRefused) -> TlsRefused:
        if refused.alert is not None:
            log.warning("tls.refused_by_peer", **fields, reason=refused.reason, alert=refused.alert,
                        detail=refused.detail)
        else:
            log.warning(refused.reason, **fields, detail=refused.detail)
        return refused

    if transport.is_closing():
        raise failed(TlsRefused("tls.connection_lost", "the connection closed before the handshake"))
    if policy.keylog_filename is None and transport.get_extra_info("network") != "sim":
        policy = policy.with_keylog_from_env()  # the real network honours SSLKEYLOGFILE
    context = _context(policy, identities, str(trust), server_side, bool(peer_name) and not server_side)
    underlay = _AlertFlushing(transport)
    try:
        tls_transport = await _start_tls(loop, underlay, protocol, context, server_side=server_side,
                                         server_hostname=None if server_side else peer_name,
                                         handshake_timeout=policy.handshake_timeout)
    except (OSError, EOFError) as exc:  # SSLError is an OSError
        raise failed(_refusal(underlay.fatal or exc, sent_certificate=bool(identities))) from exc
    if tls_transport is None:  # asyncio resolves the handshake with None when the link closed
        lost = underlay.fatal or ConnectionResetError("closed during the handshake")
        raise failed(_refusal(lost, sent_certificate=bool(identities)))
    ssl_object = tls_transport.get_extra_info("ssl_object")
    peer = _peer_info(ssl_object)
    problem = _after_handshake_problem(peer, policy, server_side, peer_name)
    if problem:
        tls_transport.abort()  # no alert possible from Python now: the peer sees a reset
        raise failed(TlsRefused(*problem))
    log.info("tls.established", **fields, version=peer.version, cipher=peer.cipher,
             peer_names=list(peer.dns_names) or [peer.common_name], sni=peer.sni)
    return tls_transport, peer


def peer_refusal(exc: BaseException | None) -> tuple[str | None, str] | None:
    """(reason or None, alert) when `exc` — e.g. from `connection_lost` — is a TLS alert the peer sent."""
    if isinstance(exc, ssl.SSLError):
        alert = _alert_name(exc)
        if alert is not None:
            return _ALERT_REASONS.get(alert), alert
    return None


def clear_context_cache() -> None:
    """Forget cached SSLContexts (after certificates on disk were regenerated)."""
    _context.cache_clear()


# -- contexts -------------------------------------------------------------------------------

_SNI: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


class _LabTlsProtocol(sslproto.SSLProtocol):
    """asyncio's TLS protocol reading through 16 KiB instead of 256 KiB: a lab of a thousand clients
    holds thousands of TLS connections (a gigabyte of buffers at 256 KiB), and one TLS record
    carries at most 16 KiB (RFC 5246 §6.2.1, RFC 8446 §5.1)."""

    max_size = 16 * 1024


async def _start_tls(loop: asyncio.AbstractEventLoop, transport: asyncio.Transport, protocol: asyncio.BaseProtocol,
                     context: ssl.SSLContext, *, server_side: bool, server_hostname: str | None,
                     handshake_timeout: float) -> asyncio.Transport | None:
    """`loop.start_tls`, the same steps as asyncio's, with `_LabTlsProtocol`."""
    waiter = loop.create_future()
    tls = _LabTlsProtocol(loop, protocol, context, waiter, server_side, server_hostname,  # type: ignore[arg-type]
                          ssl_handshake_timeout=handshake_timeout, call_connection_made=False)
    transport.pause_reading()  # nothing may reach the TLS protocol before its connection_made
    transport.set_protocol(tls)
    made = loop.call_soon(tls.connection_made, transport)
    resumed = loop.call_soon(transport.resume_reading)
    try:
        await waiter
    except BaseException:
        transport.close()
        made.cancel()
        resumed.cancel()
        raise
    return tls._app_transport


@functools.lru_cache(maxsize=256)
def _context(policy: TlsPolicy, identities: tuple[tuple[str, Identity], ...], trust: str, server_side: bool,
             check_name: bool) -> ssl.SSLContext:
    """One SSLContext per (policy, identities, trust, side): loading keys and CA files costs more
    than a handshake. `identities` holds our one certificate, or on a server a choice by SNI."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated in Python; legacy_tls11 wants them
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = policy.min_version
        context.maximum_version = policy.max_version
    context.set_ciphers(policy.ciphers)
    if server_side:
        context.verify_mode = ssl.CERT_REQUIRED if policy.mutual else ssl.CERT_NONE
        by_name = {name: _context(policy, ((name, ident),), trust, True, False)
                   for name, ident in identities[1:]} if len(identities) > 1 else {}
        context.sni_callback = functools.partial(_on_sni, by_name)
    else:
        context.check_hostname = check_name
        context.hostname_checks_common_name = policy.cn_fallback
        context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=trust)
    if identities:
        _name, identity = identities[0]
        context.load_cert_chain(identity.cert_path, identity.key_path)
    if policy.keylog_filename:
        Path(policy.keylog_filename).parent.mkdir(parents=True, exist_ok=True)
        context.keylog_filename = policy.keylog_filename
    return context


def _on_sni(by_name: dict[str, ssl.SSLContext], ssl_object: Any, server_name: str | None,
            _context: ssl.SSLContext) -> None:
    if server_name:
        _SNI[ssl_object] = server_name
        chosen = by_name.get(server_name.lower())
        if chosen is not None:
            ssl_object.context = chosen


class _AlertFlushing:
    """The plain transport as asyncio's SSLProtocol sees it.

    On a failed handshake sslproto calls `transport._force_close(exc)` before sending the alert
    OpenSSL just queued in its outgoing BIO, so the peer only sees a reset. Here the alert is
    written first and the transport closed gracefully (FIN after the data), and the failure is
    kept for `upgrade`. Everything else is the wrapped transport's own; this also gives any
    transport the `_force_close` sslproto needs (a transport without one is aborted, and its
    protocol's connection_lost then gets None instead of the exception)."""

    _start_tls_compatible = True

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.fatal: BaseException | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def _force_close(self, exc: BaseException | None) -> None:
        if self.fatal is None:
            self.fatal = exc
        outgoing = getattr(self._transport.get_protocol(), "_outgoing", None)  # sslproto's MemoryBIO
        if outgoing is not None and outgoing.pending and not self._transport.is_closing():
            self._transport.write(outgoing.read())  # the alert
            self._transport.close()  # FIN after it; `upgrade` reads the failure from `fatal`
            return
        # Nothing to say (e.g. the peer's alert arrived after the handshake): close the way asyncio
        # would, so the application's connection_lost gets the exception.
        force_close = getattr(self._transport, "_force_close", None)
        if force_close is not None:
            force_close(exc)
        else:
            self._transport.abort()


# -- failures -------------------------------------------------------------------------------


def _refusal(exc: BaseException, *, sent_certificate: bool) -> TlsRefused:
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = _VERIFY_CODES.get(exc.verify_code, "tls.handshake_failed")
        return TlsRefused(reason, f"{exc.verify_message} (X509 verify code {exc.verify_code})")
    if isinstance(exc, ssl.SSLError):
        alert = _alert_name(exc)
        if alert is not None:
            reason = _ALERT_REASONS.get(alert)
            if reason is None and alert == "handshake_failure" and not sent_certificate:
                reason = "tls.no_client_cert"  # TLS 1.2 servers answer a missing certificate so
            return TlsRefused(reason or "tls.handshake_failed", f"peer sent alert {alert}", by_peer=True, alert=alert)
        if exc.reason in _LOCAL_REASONS:
            return TlsRefused(_LOCAL_REASONS[exc.reason], _ssl_text(exc))
        if isinstance(exc, ssl.SSLEOFError):
            return TlsRefused("tls.connection_lost", "the connection ended during the handshake")
        return TlsRefused("tls.handshake_failed", _ssl_text(exc))
    if isinstance(exc, ConnectionAbortedError) and "taking longer" in str(exc):
        return TlsRefused("tls.handshake_timeout", str(exc))
    text = str(exc) or type(exc).__name__
    return TlsRefused("tls.connection_lost", f"the connection closed or reset during the handshake ({text})")


def _alert_name(exc: ssl.SSLError) -> str | None:
    reason = exc.reason or ""
    for prefix in ("SSLV3_ALERT_", "TLSV1_ALERT_", "TLSV13_ALERT_"):
        if reason.startswith(prefix):
            return reason[len(prefix):].lower()
    return None


def _ssl_text(exc: ssl.SSLError) -> str:
    return f"{exc.reason or type(exc).__name__}: {exc.strerror or exc}"


def _after_handshake_problem(peer: PeerInfo, policy: TlsPolicy, server_side: bool,
                             peer_name: str | None) -> tuple[str, str] | None:
    if peer.certificate is None:
        return None  # a server with mutual=False: nothing to check
    missing = [e for e in policy.required_eku if e not in peer.eku]
    if missing:
        return "tls.bad_eku", f"peer certificate EKU {'+'.join(peer.eku) or 'none'} lacks {'+'.join(missing)}"
    if server_side and peer_name and not peer.matches(peer_name, cn_fallback=policy.cn_fallback):
        names = ", ".join(peer.dns_names) or f"CN={peer.common_name}"
        return "tls.name_mismatch", f"client certificate names {names}, not {peer_name}"
    return None


def _peer_info(ssl_object: Any) -> PeerInfo:
    der = ssl_object.getpeercert(binary_form=True)
    cert = x509.load_der_x509_certificate(der) if der else None
    return PeerInfo(
        version=ssl_object.version() or "",
        cipher=(ssl_object.cipher() or ("",))[0],
        dns_names=issue.dns_names(cert) if cert else (),
        common_name=issue.common_name(cert) if cert else "",
        eku=issue.eku_names(cert) if cert else (),
        not_after=cert.not_valid_after_utc if cert else None,
        issuer=cert.issuer.rfc4514_string() if cert else "",
        sni=_SNI.get(ssl_object),
        certificate=cert,
    )


def _address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)
