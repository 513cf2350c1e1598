"""Small protocols and a throwaway CA for exercising networks in tests and benchmarks.

Not the lab PKI (simulator/pki): just enough certificate material to prove that a real TLS
handshake, with real certificate checks, runs over a transport.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


class Recorder(asyncio.Protocol):
    """Collects what arrives; `received` bytes, `lost` future with the connection_lost reason."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.received = bytearray()
        self.eof = False
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()
        self._waiters: list[tuple[int, asyncio.Future[bytes]]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received += data
        for waiter in [w for w in self._waiters if len(self.received) >= w[0]]:
            self._waiters.remove(waiter)
            if not waiter[1].done():
                waiter[1].set_result(bytes(self.received))

    def eof_received(self) -> bool:
        self.eof = True
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)

    async def until(self, size: int) -> bytes:
        """Wait until at least `size` bytes have arrived in total; return them all."""
        if len(self.received) >= size:
            return bytes(self.received)
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiters.append((size, waiter))
        return await waiter


class Echo(asyncio.Protocol):
    """Writes back whatever it receives. Under `loop.start_tls` the first bytes can arrive before
    the caller hands over the TLS transport (connection_made is not called by start_tls, and
    TLS 1.3 data may ride with the handshake's last flight): they wait for connection_made."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._early = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self._early:
            self.transport.write(bytes(self._early))  # type: ignore[union-attr]
            self._early.clear()

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            self._early += data
        else:
            self.transport.write(data)


class DatagramRecorder(asyncio.DatagramProtocol):
    """Collects (data, source, arrival time) for every datagram; optionally echoes it back."""

    def __init__(self, *, echo: bool = False) -> None:
        self.echo = echo
        self.transport: asyncio.DatagramTransport | None = None
        self.datagrams: list[tuple[bytes, tuple[str, int], float]] = []
        self.errors: list[OSError] = []
        self.arrived = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.datagrams.append((data, addr, asyncio.get_running_loop().time()))
        self.arrived.set()
        if self.echo and self.transport is not None:
            self.transport.sendto(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.errors.append(exc)  # type: ignore[arg-type]
        self.arrived.set()


class ThrowawayCA:
    """A root CA (P-256, 1 day) that issues serverAuth+clientAuth leaves for DNS names."""

    def __init__(self, name: str = "drlab throwaway test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self._dir = tempfile.TemporaryDirectory(prefix="drlab-net-test-")
        self.ca_path = Path(self._dir.name) / "ca.pem"
        self.ca_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    @functools.cache  # noqa: B019 - one CA per test session; the cache dies with it
    def leaf(self, dns_name: str) -> tuple[Path, Path]:
        """(cert.pem, key.pem) paths for `dns_name`."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        cert_path = Path(self._dir.name) / f"{dns_name}.pem"
        key_path = Path(self._dir.name) / f"{dns_name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        return cert_path, key_path

    def context(self, dns_name: str, *, server_side: bool) -> ssl.SSLContext:
        """A mutual-TLS context: presents `dns_name`'s leaf, requires and verifies the peer's."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_cert_chain(*self.leaf(dns_name))
        ctx.load_verify_locations(self.ca_path)
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


SBC = "sbc1.contoso.com"
SBA = "sba1.contoso.com"
PROXY = "sip.pstnhub.microsoft.com"


def branch_lab(net, *, latency: float = 0.0, jitter: float = 0.0, loss: float = 0.0):  # type: ignore[no-untyped-def]
    """The smallest outage topology: the branch (SBC, SBA) and the cloud (proxy) joined by
    `wan-seattle`. On a real network only the hosts matter."""
    if hasattr(net, "add_link"):
        net.add_link("wan-seattle", "seattle", "cloud", latency=latency, jitter=jitter, loss=loss)
    net.add_host(SBC, site="seattle")
    net.add_host(SBA, site="seattle")
    net.add_host(PROXY, aliases=("sip2.pstnhub.microsoft.com",), site="cloud")
    return net
