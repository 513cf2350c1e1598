"""Build the Docker lab's images on this machine, with no image registry.

Two images, each cached so that a rebuild takes seconds:

- the base image: Debian bookworm from ``debootstrap --variant=minbase`` with Python 3.11,
  python3-venv, iproute2 and nftables, kept as a tarball under the cache directory and
  loaded with ``docker import``;
- the drlab image: the base image plus a virtual environment installed from a wheelhouse
  built on the host (``pip wheel``) with ``pip install --no-index``. The dependencies' layer
  comes first and the drlab wheel last, so a code change reinstalls only drlab.

Packages come from Debian's mirror (the one apt is configured with) and from PyPI through the
host's pip; the containers never reach the network themselves.

Usage: ``python docker/build.py [base|image]`` (default ``image``, which builds the base first).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("DRLAB_CACHE", Path.home() / ".cache" / "drlab")) / "docker"
CONTEXT = ROOT / "build" / "docker"
SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "iproute2", "nftables")
BASE_REPO = "drlab-base"
IMAGE = "drlab:latest"
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


class BuildError(Exception):
    """A build step failed; the message says which and why."""


def debian_mirror(sources: tuple[Path, ...] = APT_SOURCES) -> str:
    """The Debian archive apt is configured with (DRLAB_DEBIAN_MIRROR overrides it).

    Reads one-line ``deb URL SUITE ...`` entries and deb822 ``URIs:``/``Suites:`` stanzas,
    and keeps the first URL that serves the bookworm suite itself (not -security).
    """
    if os.environ.get("DRLAB_DEBIAN_MIRROR"):
        return os.environ["DRLAB_DEBIAN_MIRROR"]
    files: list[Path] = []
    for source in sources:
        if source.is_dir():
            files += sorted(p for p in source.iterdir() if p.suffix in (".list", ".sources"))
        elif source.is_file():
            files.append(source)
    for path in files:
        for uri, suites in _apt_entries(path.read_text(encoding="utf-8", errors="replace")):
            if SUITE in suites:
                return uri
    raise BuildError(f"no Debian {SUITE} mirror in {', '.join(map(str, sources))}; set DRLAB_DEBIAN_MIRROR")


def _apt_entries(text: str) -> list[tuple[str, list[str]]]:
    entries: list[tuple[str, list[str]]] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(
            (key.strip().lower(), value.split())
            for key, _, value in (line.partition(":") for line in stanza.splitlines()
                                  if re.match(r"^[A-Za-z-]+:", line))
        )
        if "uris" in fields and "suites" in fields and "deb" in fields.get("types", ["deb"]):
            entries += [(uri, fields["suites"]) for uri in fields["uris"]]
        for line in stanza.splitlines():
            words = re.sub(r"\[[^]]*\]", "", line).split()
            if len(words) >= 3 and words[0] == "deb":
                entries.append((words[1], [words[2]]))
    return entries


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("+", " ".join(cmd), flush=True)
    result = subprocess.run(cmd, **kwargs)
    if result.returncode != 0:
        raise BuildError(f"{cmd[0]} failed (exit {result.returncode}): {' '.join(cmd)}")
    return result


def image_exists(name: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", name], capture_output=True).returncode == 0


def base_image() -> str:
    """The base image's tag, built (debootstrap, once) and imported (from the tarball) if missing."""
    key = hashlib.sha256(" ".join((SUITE, *PACKAGES)).encode()).hexdigest()[:12]
    tag = f"{BASE_REPO}:{SUITE}-{key}"
    if image_exists(tag):
        return tag
    tarball = CACHE / f"{SUITE}-minbase-{key}.tar"
    if not tarball.exists():
        _debootstrap(tarball)
    run(["docker", "import", "--change", "LABEL drlab.image=base", str(tarball), tag])
    return tag


def _debootstrap(tarball: Path) -> None:
    if shutil.which("debootstrap") is None:
        raise BuildError("debootstrap is not installed (apt-get install debootstrap)")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="rootfs-") as rootfs:
        run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
             SUITE, rootfs, debian_mirror()])
        # apt's lists and .debs are not needed in the image.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (Path(rootfs) / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        partial = tarball.with_suffix(".partial")
        run(["tar", "-C", rootfs, "--numeric-owner", "-cf", str(partial), "."])
        partial.rename(tarball)


def wheelhouse() -> None:
    """build/docker/deps (the dependencies, rebuilt when pyproject's list changes) and app/ (drlab)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    requirements = sorted(project["project"]["dependencies"])
    deps, app = CONTEXT / "deps", CONTEXT / "app"
    stamp = deps / ".requirements"
    if not stamp.exists() or stamp.read_text(encoding="utf-8") != "\n".join(requirements):
        shutil.rmtree(deps, ignore_errors=True)
        deps.mkdir(parents=True)
        run([sys.executable, "-m", "pip", "wheel", "--quiet", "-w", str(deps), *requirements])
        stamp.write_text("\n".join(requirements), encoding="utf-8")
    shutil.rmtree(app, ignore_errors=True)
    app.mkdir(parents=True)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(app), str(ROOT)])
    shutil.copy(ROOT / "docker" / "Dockerfile", CONTEXT / "Dockerfile")


def drlab_image(base: str) -> None:
    wheelhouse()
    # The classic builder (no buildx here); each step is cached by the content it copies.
    run(["docker", "build", "--build-arg", f"BASE={base}", "-t", IMAGE, str(CONTEXT)],
        env={**os.environ, "DOCKER_BUILDKIT": "0"})
    # The previous drlab image, now untagged (only drlab's: the filter is its label).
    run(["docker", "image", "prune", "-f", "--filter", "label=drlab.image=drlab"], capture_output=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", nargs="?", choices=("base", "image"), default="image")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        base = base_image()
        if args.target == "image":
            drlab_image(base)
    except BuildError as error:
        print(f"docker/build.py: {error}", file=sys.stderr)
        return 2
    built = IMAGE if args.target == "image" else base
    print(f"built {built} in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
