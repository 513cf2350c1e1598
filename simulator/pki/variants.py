"""The catalogue of deliberately broken (or unusual) leaf certificates scenarios use.

One row per variant: how the certificate differs from a good one, and what a Direct Routing
peer does with it (`refusal`: the named reason `simulator.net.tls` reports, or None when a
Direct Routing peer accepts it). The rows follow Direct Routing's certificate rules [S1][S8][S10]
and RFC 6125 / RFC 2818 §3.1.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.pki.issue import PkiError

BOTH_EKUS = ("serverAuth", "clientAuth")


@dataclass(frozen=True)
class Variant:
    name: str
    summary: str
    refusal: str | None
    validity: str = "current"  # current | expired | future
    issuer: str = "intermediate"  # intermediate | untrusted-root
    with_intermediate: bool = True  # the .pem carries leaf + intermediate
    eku: tuple[str, ...] = BOTH_EKUS
    names: str = "fqdn"  # fqdn | wrong-san | cn-only | wildcard

    def subject_names(self, fqdn: str) -> tuple[str, tuple[str, ...]]:
        """(CN, SAN DNS names) for this variant of `fqdn`'s certificate."""
        if self.names == "fqdn":
            return fqdn, (fqdn,)
        if self.names == "wrong-san":
            # CN still says the FQDN: RFC 6125 §6.4.4 — with a DNS SAN present the CN is ignored.
            return fqdn, (f"wrong-{fqdn}",)
        if self.names == "cn-only":
            return fqdn, ()
        if self.names == "wildcard":
            wildcard = wildcard_for(fqdn)
            return wildcard, (wildcard,)
        raise AssertionError(self.names)


GOOD = Variant("good", "the certificate a node normally presents", None)

CATALOGUE: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("expired", "validity ended yesterday", "tls.expired", validity="expired"),
        Variant("not-yet-valid", "validity starts in 30 days", "tls.not_yet_valid", validity="future"),
        Variant("wrong-san", "SAN names wrong-<fqdn> (CN is still the FQDN)", "tls.name_mismatch",
                names="wrong-san"),
        Variant("untrusted-ca", "issued by another root the lab does not trust", "tls.unknown_ca",
                issuer="untrusted-root", with_intermediate=False),
        Variant("missing-intermediate", "the .pem holds the leaf only, not the intermediate",
                "tls.unknown_ca", with_intermediate=False),
        Variant("no-client-auth", "EKU serverAuth only (Direct Routing needs clientAuth too)",
                "tls.bad_eku", eku=("serverAuth",)),
        Variant("cn-only", "no SAN; the FQDN only in CN (accepted by the CN fallback)", None,
                names="cn-only"),
        Variant("wildcard", "CN = SAN = *.<parent domain>: matches exactly one label", None,
                names="wildcard"),
    )
}
VARIANTS = tuple(CATALOGUE)


def variant(name: str) -> Variant:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise PkiError(f"unknown certificate variant {name!r}; known: {', '.join(VARIANTS)}") from None


def wildcard_for(fqdn: str) -> str:
    """`*.<parent domain>`; OpenSSL never lets a wildcard cover a top-level domain, so the parent
    needs two labels or more."""
    labels = fqdn.split(".")
    if len(labels) < 3:
        raise PkiError(f"no wildcard for {fqdn!r}: its parent domain needs at least two labels")
    return "*." + ".".join(labels[1:])
