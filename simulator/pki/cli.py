"""`drlab certs --out DIR FQDN... [--force] [--key rsa-2048]`: write the lab PKI.

Prints one line per file, `wrote PATH` or `kept PATH`, then the trust anchor. Exit status 0 on
success, 1 when existing files would have to be overwritten (listed on stderr; nothing is
written — rerun with --force), 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys

from simulator.pki.issue import PkiError
from simulator.pki.store import LabPki, PkiConflict
from simulator.pki.variants import CATALOGUE, VARIANTS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("fqdns", nargs="+", metavar="FQDN", help="host names to issue certificates for")
    parser.add_argument("--out", required=True, metavar="DIR", help="certificate directory (created if missing)")
    parser.add_argument("--force", action="store_true",
                        help="regenerate everything asked for, overwriting files valid or not")
    parser.add_argument("--key", default="rsa-2048", metavar="TYPE",
                        help="rsa-2048 (default), rsa-3072, rsa-4096, ec-p256, ec-p384")
    parser.add_argument("--no-broken", action="store_true", help="only the good certificates, no broken/")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "broken variants, in DIR/broken/<variant>/<fqdn>.pem|.key:\n" + "\n".join(
        f"  {name:<21} {CATALOGUE[name].summary}" + (f" -> {CATALOGUE[name].refusal}" if CATALOGUE[name].refusal else "")
        for name in VARIANTS)


def run(args: argparse.Namespace) -> int:
    try:
        pki = LabPki(args.out, key=args.key, force=args.force)
        pki.ensure(args.fqdns, variants=() if args.no_broken else VARIANTS)
    except PkiConflict as exc:
        print(f"drlab certs: {exc}", file=sys.stderr)
        return 1
    except PkiError as exc:
        print(f"drlab certs: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"drlab certs: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    for path in pki.written:
        print(f"wrote {path}")
    for path in pki.kept:
        print(f"kept  {path}")
    for note in pki.skipped:
        print(f"skipped {note}")
    print(f"trust anchor: {pki.ca_path}")
    return 0
