"""Fuzz targets: each takes any bytes and may raise only the project's own typed errors.

A target returns normally for input it handled (accepted, or refused with a `SipParseError` or
an `InputError`); anything else it raises is a crash, which `python -m fuzz` keeps under
tests/fuzz/regressions/<target>/ and tests/fuzz/test_regressions.py replays in `make test`.
The targets need no fuzzer: atheris only chooses the bytes.

- `parse_message`: the compiled and Python quick paths and the careful parser agree; a parsed
  message re-parses from its own bytes to an equal message; a refused request gets an answer
  from `answer_unparseable` that parses, or None (never an exception).
- `stream_parser`: the same bytes fed in one piece and in random chunks (the first 4 octets
  seed the cuts) give the same messages and the same errors.
- `tenant_export`: the first octet picks a file of examples/contoso-export/, the rest is its text.
- `tenant_yaml`, `tenant_powershell`, `lab`, `scenario`: the octets as a file, read by the
  loader as `drlab` reads it; a tenant the loader accepts then routes a call for each user
  (what it accepted must be usable), a scenario is checked against its lab.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from simulator.errors import InputError
from simulator.lab.spec import LabSpec, load_lab_spec
from simulator.scenario.loader import check_against_lab, load_scenario
from simulator.sip import Request, Response, SipParseError, StreamParser, parse_message
from simulator.sip.parser import _compiled_quick, parse_message_careful, parse_message_python
from simulator.sip.uas_checks import answer_unparseable
from simulator.tenant.export_loader import load_export
from simulator.tenant.model import Tenant
from simulator.tenant.ps_loader import load_powershell_with_warnings
from simulator.tenant.routing import select_route
from simulator.tenant.yaml_loader import load_yaml

REPOSITORY = Path(__file__).resolve().parent.parent
# The lab and tenant a fuzzed scenario names (seeds are rewritten to these two names).
SCENARIO_LAB = REPOSITORY / "examples" / "labs" / "contoso.yaml"
SCENARIO_TENANT = REPOSITORY / "examples" / "contoso.yaml"
EXPORT = REPOSITORY / "examples" / "contoso-export"
EXPORT_FILES = sorted(path.name for path in EXPORT.glob("*.json"))


class Mismatch(AssertionError):
    """Two ways of reading the same octets disagree: a parser defect, not bad input."""


def _outcome(parse: Callable[[bytes], Request | Response], data: bytes) -> tuple:
    try:
        message = parse(data)
    except SipParseError as error:
        return ("error", error.status, error.reason)
    return ("message", message.start_line(), message.headers._names, message.headers._values, message.body,
            message.to_bytes())  # fmt: skip


def fuzz_parse_message(data: bytes) -> None:
    careful = _outcome(parse_message_careful, data)
    quick = [parse_message_python] + ([lambda d: _compiled_quick(d) or parse_message_careful(d)] if _compiled_quick else [])
    for parse in quick:
        if _outcome(parse, data) != careful:
            raise Mismatch(f"quick and careful parse differ: {_outcome(parse, data)!r} != {careful!r}")
    try:
        message = parse_message(data)
    except SipParseError as error:
        answer = answer_unparseable(data, error)
        if answer is not None and parse_message(answer.to_bytes()).status != error.status:
            raise Mismatch("the answer to a refused request does not carry the error's status") from None
        return
    again = parse_message(message.to_bytes())
    if again != message:
        raise Mismatch(f"a parsed message does not re-parse to itself: {message.to_bytes()!r}")


def read_stream(parser: StreamParser, chunks: list[bytes]) -> list[tuple]:
    """Everything the parser gives for the chunks, as a transport reads it: messages and errors
    in order, calling again after an error, or while one waits, until a call gives nothing."""
    out: list[tuple] = []
    for chunk in chunks:
        while True:
            try:
                messages = parser.feed(chunk)
            except SipParseError as error:
                out.append(("error", error.status, error.reason, error.fatal, error.octets))
                if error.fatal:
                    return out
                chunk = b""
                continue
            out += [("message", m.to_bytes()) for m in messages]
            chunk = b""
            if not messages or not parser.holds_error:
                break
    return out


def fuzz_stream_parser(data: bytes) -> None:
    seed, stream = data[:4], data[4:]
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(len(stream) + 1), min(len(stream) + 1, rng.randint(0, 12))))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]
    whole = read_stream(StreamParser(), [stream])
    chunked = read_stream(StreamParser(), chunks)
    if whole != chunked:
        raise Mismatch(f"the result depends on the chunking {cuts}: {whole!r} != {chunked!r}")


def _scratch() -> Path:
    """A directory for the file a loader reads, made once per process; a scenario in it finds
    `lab.yaml` and `tenant.yaml` beside it."""
    global _SCRATCH
    if _SCRATCH is None:
        _SCRATCH = Path(tempfile.mkdtemp(prefix="drlab-fuzz-"))
        (_SCRATCH / "lab.yaml").symlink_to(SCENARIO_LAB)
        (_SCRATCH / "tenant.yaml").symlink_to(SCENARIO_TENANT)
    return _SCRATCH


_SCRATCH: Path | None = None
_LAB: LabSpec | None = None


def _as_file(data: bytes, name: str) -> Path:
    path = _scratch() / name
    path.write_bytes(data)
    return path


def _load(load: Callable[[Path], object], data: bytes, name: str) -> None:
    try:
        load(_as_file(data, name))
    except InputError:
        pass


def _route_calls(tenant: Tenant) -> None:
    """What `drlab route` does with a tenant the loader accepted: every user dials a number."""
    for user in list(tenant.users)[:8]:
        select_route(tenant, user, "+14255550100")


def fuzz_tenant_yaml(data: bytes) -> None:
    _load(lambda path: _route_calls(load_yaml(path)), data, "input.yaml")


def fuzz_tenant_powershell(data: bytes) -> None:
    _load(lambda path: _route_calls(load_powershell_with_warnings(path)[0]), data, "input.ps1")


def fuzz_tenant_export(data: bytes) -> None:
    """The first octet picks one file of the contoso export folder, the rest replaces its text; the
    folder is then read and routed like `drlab route --tenant export/`."""
    if not data:
        return
    folder = _scratch() / "export"
    if not folder.exists():
        shutil.copytree(EXPORT, folder)
    name = EXPORT_FILES[data[0] % len(EXPORT_FILES)]
    (folder / name).write_bytes(data[1:])
    try:
        _route_calls(load_export(folder))
    except InputError:
        pass
    finally:
        shutil.copyfile(EXPORT / name, folder / name)


def fuzz_lab(data: bytes) -> None:
    _load(load_lab_spec, data, "input.yaml")


def _scenario(path: Path) -> None:
    global _LAB
    scenario = load_scenario(path)
    if _LAB is None:
        _LAB = load_lab_spec(SCENARIO_LAB)
    check_against_lab(scenario, _LAB)


def fuzz_scenario(data: bytes) -> None:
    _load(_scenario, data, "input.yaml")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "parse_message": fuzz_parse_message,
    "stream_parser": fuzz_stream_parser,
    "tenant_yaml": fuzz_tenant_yaml,
    "tenant_powershell": fuzz_tenant_powershell,
    "tenant_export": fuzz_tenant_export,
    "lab": fuzz_lab,
    "scenario": fuzz_scenario,
}
