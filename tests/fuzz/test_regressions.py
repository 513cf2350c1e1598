"""Every input that ever crashed a fuzz target, replayed through that target (no fuzzer needed).

`python -m fuzz` (make fuzz) writes a crashing input to regressions/<target>/; the target then
must handle it: accept it, or refuse it with the project's own typed error (SipParseError,
InputError). Loader crashes whose fix lives in the loaders are listed in OPEN with what they
raise: xfail(strict=True), so each turns into a failure to clear from the list once it is fixed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz.targets import TARGETS

REGRESSIONS = Path(__file__).parent / "regressions"

OPEN: dict[tuple[str, str], str] = {}

CASES = sorted((path.parent.name, path.name) for path in REGRESSIONS.glob("*/*") if path.is_file())


def _case(target: str, name: str) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=OPEN[target, name])] if (target, name) in OPEN else []
    return pytest.param(target, name, marks=marks, id=f"{target}/{name}")


def test_every_open_crash_has_its_input_kept():
    assert set(OPEN) <= set(CASES)


def test_every_kept_input_names_a_target():
    assert {target for target, _name in CASES} <= set(TARGETS)


@pytest.mark.parametrize("target, name", [_case(target, name) for target, name in CASES])
def test_a_kept_crash_input_is_handled(target, name):
    TARGETS[target]((REGRESSIONS / target / name).read_bytes())
