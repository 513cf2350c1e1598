"""The lab PKI: a root, an intermediate, a leaf per FQDN and the broken-certificate catalogue.

    from simulator.pki import LabPki, Identity
    pki = LabPki("certs")                       # key="rsa-2048" (default) | "ec-p256" | ...
    ids = pki.ensure(["sbc1.contoso.com"])      # {fqdn: Identity(fqdn, cert_path, key_path)}
    bad = pki.broken("expired", "sbc1.contoso.com")
    trust = pki.ca_path                         # what every node trusts

`drlab certs` (simulator.pki.cli) is the same thing from the command line. The catalogue of
variants and the refusal each causes is `simulator.pki.variants.CATALOGUE`.
"""

from simulator.pki.issue import KeySpec, PkiError
from simulator.pki.store import Identity, LabPki, PkiConflict
from simulator.pki.variants import CATALOGUE, VARIANTS, Variant

__all__ = ["CATALOGUE", "VARIANTS", "Identity", "KeySpec", "LabPki", "PkiConflict", "PkiError", "Variant"]
