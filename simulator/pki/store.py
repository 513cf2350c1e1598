"""`LabPki`: the lab's certificate store on disk — what is in it, and how it is (re)issued.

Layout of DIR (what `drlab certs --out DIR` writes):

    ca.pem, ca.key                      lab root CA (what every node trusts)
    intermediate.pem, intermediate.key  the intermediate CA that issues the leaves
    <fqdn>.pem, <fqdn>.key              leaf + intermediate; CN = SAN = fqdn; EKU serverAuth+clientAuth
    broken/untrusted-ca/ca.pem, ca.key  a second root nobody trusts
    broken/<variant>/<fqdn>.pem, .key   the catalogue of `simulator.pki.variants`

Idempotent: existing material that is still valid (parses, key matches, issued by the CA on disk,
names/EKU/validity as the profile says, more than 30 days left — the Teams health dashboard
warns at 30 days [S9]) is kept. Anything present but unusable is a conflict: nothing
is written and `PkiConflict` lists each file and why, unless `force=True` regenerates
everything asked for. `written` and `kept` list every file touched.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from simulator.pki import issue
from simulator.pki.issue import KeySpec, PkiError, PrivateKey
from simulator.pki.variants import GOOD, VARIANTS, Variant, variant, wildcard_for

RENEW_BEFORE = dt.timedelta(days=30)
LEAF_LIFETIME = dt.timedelta(days=397)  # CA/Browser Forum maximum for public TLS certificates
CA_LIFETIME = {"root": dt.timedelta(days=3650), "intermediate": dt.timedelta(days=1825)}
BACKDATE = dt.timedelta(hours=1)  # tolerate clock skew between lab hosts

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_FQDN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})+$")


class PkiConflict(PkiError):
    """Existing files would have to be overwritten; `problems` is [(path, why)]."""

    def __init__(self, problems: list[tuple[Path, str]]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {path}: {why}" for path, why in problems)
        super().__init__(f"existing files are not usable and were left alone:\n{lines}\n"
                         "run with --force (force=True) to regenerate them")


@dataclass(frozen=True)
class Identity:
    """A certificate chain file (leaf first) and its private key, as TLS contexts load them."""

    fqdn: str
    cert_path: Path
    key_path: Path
    variant: str | None = None  # None: the good certificate


def check_fqdn(fqdn: str) -> str:
    """The FQDN lower-cased without a trailing dot; PkiError when it is not a DNS host name."""
    normal = fqdn.strip().rstrip(".").lower()
    if len(normal) > 253 or not _FQDN.match(normal):
        raise PkiError(f"not a fully qualified domain name: {fqdn!r} (labels of a-z, 0-9, '-', at least two)")
    return normal


@dataclass
class _Slot:
    """One certificate + key pair on disk and the rule it must satisfy."""

    pem: Path
    key: Path
    kind: str  # root | intermediate | leaf
    parent: _Slot | None = None
    common_name: str = ""
    variant: Variant | None = None
    fqdn: str = ""
    cert: x509.Certificate | None = None
    private_key: PrivateKey | None = None
    action: str = ""  # keep | write | done (handled earlier by this LabPki)

    @property
    def profile(self) -> Variant:
        return self.variant or GOOD


class LabPki:
    """The certificate directory of one lab. Not thread-safe; one writer at a time."""

    def __init__(self, directory: str | os.PathLike[str], *, key: str | KeySpec = "rsa-2048",
                 force: bool = False, now: dt.datetime | None = None) -> None:
        self.dir = Path(directory)
        self.key_spec = key if isinstance(key, KeySpec) else KeySpec.parse(key)
        self.force = force
        self.now = now
        self.written: list[Path] = []
        self.kept: list[Path] = []
        self.skipped: list[str] = []
        self._root = _Slot(self.dir / "ca.pem", self.dir / "ca.key", "root", common_name="drlab Lab Root CA")
        self._intermediate = _Slot(self.dir / "intermediate.pem", self.dir / "intermediate.key",
                                   "intermediate", self._root, common_name="drlab Lab Intermediate CA")
        untrusted = self.dir / "broken" / "untrusted-ca"
        self._untrusted_root = _Slot(untrusted / "ca.pem", untrusted / "ca.key", "root",
                                     common_name="drlab Untrusted Root CA")
        self._done: set[Path] = set()

    @property
    def ca_path(self) -> Path:
        """The lab root every node trusts (`TlsPolicy`'s trust anchor)."""
        return self._root.pem

    @property
    def untrusted_ca_path(self) -> Path:
        return self._untrusted_root.pem

    def ensure(self, fqdns: Iterable[str], *, variants: Iterable[str] = VARIANTS) -> dict[str, Identity]:
        """Issue (or keep) the CA chain, a good certificate per FQDN and the given broken variants.

        The wildcard variant is skipped (and noted in `skipped`) for FQDNs whose parent domain
        has a single label. Returns the good identity of each FQDN."""
        names = [check_fqdn(f) for f in fqdns]
        if not names:
            raise PkiError("no FQDN given")
        wanted = [variant(v) for v in variants]
        slots = [self._leaf(n, None) for n in names]
        for name in names:
            for v in wanted:
                if v.names == "wildcard" and name.count(".") < 2:
                    self.skipped.append(f"broken/{v.name}/{name}: {name} has no parent domain to cover")
                    continue
                slots.append(self._leaf(name, v))
        self._realize(slots)
        return {n: self._identity(n, None) for n in names}

    def identity(self, fqdn: str) -> Identity:
        """The good certificate of `fqdn`, issued now if it is not on disk yet."""
        name = check_fqdn(fqdn)
        self._realize([self._leaf(name, None)])
        return self._identity(name, None)

    def broken(self, variant_name: str, fqdn: str) -> Identity:
        """The `variant_name` certificate of `fqdn` (see `simulator.pki.variants.CATALOGUE`)."""
        name = check_fqdn(fqdn)
        v = variant(variant_name)
        if v.names == "wildcard":
            wildcard_for(name)  # raises a clear PkiError when there is no parent domain
        self._realize([self._leaf(name, v)])
        return self._identity(name, v)

    # -- planning and issuing -------------------------------------------------------------

    def _identity(self, fqdn: str, v: Variant | None) -> Identity:
        slot = self._leaf(fqdn, v)
        return Identity(fqdn, slot.pem, slot.key, v.name if v else None)

    def _leaf(self, fqdn: str, v: Variant | None) -> _Slot:
        folder = self.dir if v is None else self.dir / "broken" / v.name
        parent = self._untrusted_root if v is not None and v.issuer == "untrusted-root" else self._intermediate
        return _Slot(folder / f"{fqdn}.pem", folder / f"{fqdn}.key", "leaf", parent, variant=v, fqdn=fqdn)

    def _realize(self, leaves: list[_Slot]) -> None:
        """Plan every slot (keep / write / conflict) before writing anything, then write."""
        canonical: dict[Path, _Slot] = {}
        order: list[_Slot] = []

        def add(slot: _Slot) -> _Slot:
            if slot.pem in canonical:
                return canonical[slot.pem]
            if slot.parent is not None:
                slot.parent = add(slot.parent)
            canonical[slot.pem] = slot
            order.append(slot)
            return slot

        for leaf in leaves:
            add(leaf)
        now = self._now()
        conflicts: list[tuple[Path, str]] = []
        for slot in order:
            if slot.pem in self._done:
                slot.action = "done"
                continue
            if self.force:
                slot.action = "write"
                continue
            problem = self._plan(slot, now)
            if problem:
                conflicts.append((slot.pem, problem))
        if conflicts:
            raise PkiConflict(conflicts)
        for slot in order:
            if slot.action == "done":
                continue
            if slot.action == "write":
                self._issue(slot, now)
                self.written += [slot.pem, slot.key]
            else:
                self.kept += [slot.pem, slot.key]
            self._done.add(slot.pem)

    def _plan(self, slot: _Slot, now: dt.datetime) -> str | None:
        """Decide `slot.action`; return why the files on disk cannot be kept, if they cannot."""
        present = [p for p in (slot.pem, slot.key) if p.exists()]
        parent_new = slot.parent is not None and slot.parent.action == "write"
        if not present:
            slot.action = "write"
            return None
        if parent_new:
            return f"issued by {slot.parent.pem.name}, which is missing or being regenerated"
        try:
            certs = x509.load_pem_x509_certificates(slot.pem.read_bytes())
            # RSA key validation costs ~40 ms a key; `_check` compares the key with the certificate.
            key = serialization.load_pem_private_key(slot.key.read_bytes(), password=None,
                                                     unsafe_skip_rsa_key_validation=True)
        except FileNotFoundError as exc:
            return f"{Path(exc.filename).name} is missing"
        except ValueError as exc:
            return f"cannot be parsed ({exc})"
        problem = self._check(slot, certs, key, now)
        if problem:
            return problem
        slot.cert, slot.private_key, slot.action = certs[0], key, "keep"  # type: ignore[assignment]
        return None

    def _check(self, slot: _Slot, certs: list[x509.Certificate], key: object, now: dt.datetime) -> str | None:
        cert = certs[0]
        if not self.key_spec.describes(key):
            return f"key is not {self.key_spec}"
        if _public_der(cert.public_key()) != _public_der(key.public_key()):  # type: ignore[attr-defined]
            return "the key does not belong to the certificate"
        issuer = cert if slot.parent is None else slot.parent.cert
        if issuer is None or not issue.issued_by(cert, issuer):
            return "not issued by " + ("itself" if slot.parent is None else slot.parent.pem.name)
        profile = slot.profile
        validity = profile.validity if slot.kind == "leaf" else "current"
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        if validity == "current" and not (start <= now and end - RENEW_BEFORE > now):
            return f"not valid from now for {RENEW_BEFORE.days} more days (valid {start:%Y-%m-%d}..{end:%Y-%m-%d})"
        if validity == "expired" and not end < now:
            return "no longer expired"
        if validity == "future" and not start > now:
            return "already valid"
        if slot.kind != "leaf":
            return None if len(certs) == 1 else "holds more than one certificate"
        chain = _chain(slot, cert)
        if [c.fingerprint(_SHA256) for c in certs] != [c.fingerprint(_SHA256) for c in chain]:
            return "the chain is not " + ("leaf + intermediate" if len(chain) == 2 else "the leaf alone")
        cn, sans = profile.subject_names(slot.fqdn)
        if (issue.common_name(cert), issue.dns_names(cert)) != (cn, sans):
            return f"names are not CN={cn} SAN={list(sans)}"
        if set(issue.eku_names(cert)) != set(profile.eku):
            return f"EKU is not {'+'.join(profile.eku)}"
        return None

    def _issue(self, slot: _Slot, now: dt.datetime) -> None:
        key = self.key_spec.generate()
        start = now - BACKDATE
        if slot.kind != "leaf":
            end = start + CA_LIFETIME[slot.kind]
            parent = slot.parent
            cert = issue.issue_ca(
                issue.name(slot.common_name), key, not_before=start, not_after=end,
                issuer_cert=parent.cert if parent else None, issuer_key=parent.private_key if parent else None,
                path_length=0 if parent else None,
            )
            chain = [cert]
        else:
            v = slot.profile
            if v.validity == "expired":
                start, end = now - dt.timedelta(days=400), now - dt.timedelta(days=1)
            elif v.validity == "future":
                start = now + dt.timedelta(days=30)
                end = start + LEAF_LIFETIME
            else:
                end = start + LEAF_LIFETIME
            cn, sans = v.subject_names(slot.fqdn)
            parent = slot.parent
            cert = issue.issue_leaf(common_name=cn, dns_names=sans, eku=v.eku, key=key,
                                    issuer_cert=parent.cert, issuer_key=parent.private_key,
                                    not_before=start, not_after=end)
            chain = _chain(slot, cert)
        slot.cert, slot.private_key = cert, key
        _write(slot.key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()), mode=0o600)
        _write(slot.pem, b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain), mode=0o644)

    def _now(self) -> dt.datetime:
        return self.now or dt.datetime.now(dt.UTC)


def _chain(slot: _Slot, leaf: x509.Certificate) -> list[x509.Certificate]:
    """What a leaf's .pem holds: leaf + intermediate, or the leaf alone (missing-intermediate,
    and untrusted-ca, whose root issues its leaves directly)."""
    parent = slot.parent
    if slot.profile.with_intermediate and parent is not None and parent.kind == "intermediate":
        return [leaf, parent.cert]  # type: ignore[list-item]
    return [leaf]


_SHA256 = hashes.SHA256()


def _public_der(public: object) -> bytes:
    return public.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                               serialization.PublicFormat.SubjectPublicKeyInfo)


def _write(path: Path, data: bytes, *, mode: int) -> None:
    """Write via a temporary file and rename, so a crash never leaves half a key behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
