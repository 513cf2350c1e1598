"""Building blocks of the lab PKI: keys, CA certificates and leaf certificates.

Pure functions over `cryptography` objects; no files. `simulator.pki.store` decides what to
issue and where it lives on disk.

Leaf profile (Direct Routing's SBC certificate rules [S1][S8]): CN = SAN = the FQDN,
EKU serverAuth + clientAuth (enforced by Microsoft since March 2024), key usage
digitalSignature (+ keyEncipherment for RSA), not a CA, signed with SHA-256. CA certificates
carry basicConstraints critical, keyCertSign/cRLSign and key identifiers, so even OpenSSL's
X509_STRICT mode accepts the chain.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

EKU_OIDS = {
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
}
EKU_NAMES = {oid: name for name, oid in EKU_OIDS.items()}

_CURVES = {"p256": ec.SECP256R1, "p384": ec.SECP384R1}


class PkiError(ValueError):
    """Bad input to the lab PKI, or material on disk that cannot be used as asked."""


@dataclass(frozen=True)
class KeySpec:
    """What kind of key to generate: `rsa-2048` (default), `rsa-3072`, `rsa-4096`, `ec-p256`, `ec-p384`.

    Direct Routing's four cipher suites are ECDHE-*RSA* ([S8][S34]), so certificates used
    under `TlsPolicy.direct_routing()` need RSA keys; EC keys only work with a policy whose
    ciphers include ECDSA suites (or TLS 1.3). OpenSSL's default security level 2 refuses RSA
    keys below 2048 bits, which is why there is no smaller RSA choice.
    """

    kind: str = "rsa"
    size: int = 2048
    curve: str = ""

    @classmethod
    def parse(cls, text: str) -> KeySpec:
        kind, _, param = text.strip().lower().partition("-")
        if kind == "rsa" and param in ("2048", "3072", "4096"):
            return cls("rsa", int(param))
        if kind == "ec" and param in _CURVES:
            return cls("ec", 0, param)
        raise PkiError(f"unknown key type {text!r}: use rsa-2048, rsa-3072, rsa-4096, ec-p256 or ec-p384")

    def __str__(self) -> str:
        return f"rsa-{self.size}" if self.kind == "rsa" else f"ec-{self.curve}"

    def generate(self) -> PrivateKey:
        if self.kind == "rsa":
            return rsa.generate_private_key(public_exponent=65537, key_size=self.size)
        return ec.generate_private_key(_CURVES[self.curve]())

    def describes(self, key: object) -> bool:
        if self.kind == "rsa":
            return isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey) and key.key_size == self.size
        return isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and (
            key.curve.name == _CURVES[self.curve].name
        )


def name(common_name: str, organization: str = "drlab") -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)]
    if common_name:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def issue_ca(
    subject: x509.Name,
    key: PrivateKey,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    issuer_cert: x509.Certificate | None = None,
    issuer_key: PrivateKey | None = None,
    path_length: int | None = None,
) -> x509.Certificate:
    """A root (no issuer given: self-signed) or an intermediate CA certificate."""
    public = key.public_key()
    signer_key = issuer_key if issuer_key is not None else key
    issuer = issuer_cert.subject if issuer_cert is not None else subject
    builder = (
        _base(subject, issuer, public, not_before, not_after, signer_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return builder.sign(signer_key, hashes.SHA256())


def issue_leaf(
    *,
    common_name: str,
    dns_names: tuple[str, ...],
    eku: tuple[str, ...],
    key: PrivateKey,
    issuer_cert: x509.Certificate,
    issuer_key: PrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """An end-entity certificate; an empty `dns_names` leaves out the SAN extension entirely."""
    public = key.public_key()
    builder = (
        _base(name(common_name), issuer_cert.subject, public, not_before, not_after, issuer_key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([EKU_OIDS[e] for e in eku]), critical=False)
    )
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _base(
    subject: x509.Name,
    issuer: x509.Name,
    public: object,
    not_before: dt.datetime,
    not_after: dt.datetime,
    signer_key: PrivateKey,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()), critical=False
        )
    )


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when `issuer`'s key signed `cert` (names equal and the signature verifies)."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def dns_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(san.get_values_for_type(x509.DNSName))


def common_name(cert: x509.Certificate) -> str:
    values = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


def eku_names(cert: x509.Certificate) -> tuple[str, ...]:
    """The certificate's EKUs by name ("serverAuth", "clientAuth"; others by dotted OID)."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(EKU_NAMES.get(oid, oid.dotted_string) for oid in eku)
