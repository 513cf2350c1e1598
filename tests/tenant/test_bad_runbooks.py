"""Bad input in a PowerShell runbook is a TenantError at FILE:LINE:COL, never a traceback.

Each row is an input that once ended in a Python exception (found by hand or by a random-input
pass over examples/contoso.ps1 and the loader's cmdlet table).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.errors import SourcePosition
from simulator.tenant.errors import TenantError
from simulator.tenant.ps_loader import load_powershell, run_powershell

GATEWAY = "New-CsOnlinePSTNGateway -Identity sbc1.contoso.com -SipSignalingPort 5061"

TEXT_CASES = [
    # (what, runbook, line, column, words in the message)
    ("a regular expression with a huge repeat count (OverflowError)",
     "New-CsOnlineVoiceRoute -Identity R -NumberPattern '\\d{99999999999999999999}'", 1, 51,
     "a repeat count is too large"),
    ("a failover code of two digits (ValueError)", GATEWAY + ' -FailoverResponseCodes "50"', 1, 98,
     "must be SIP response codes from 400 to 699, not 50"),
    ("a NUL in a string", "New-CsOnlinePSTNGateway -Identity 'sbc1\x00' -SipSignalingPort 5061", 1, 40,
     "control character U+0000"),
    ("another control character on a later line", GATEWAY + "\nWrite-Host 'a\x01b'", 2, 14,
     "control character U+0001"),
    ("a superscript digit where a value belongs (ValueError from int())", "$x = \u2077", 1, 6,
     "expected a value"),
    ("a number too long for int() in an expression", "$x = " + "9" * 5000, 1, 6, "more than 30 digits"),
    ("a number too long for int() as a cmdlet's number (ValueError)",
     "New-CsOnlineVoiceRoute -Identity R -Priority " + "9" * 5000, 1, 46, "takes a whole number"),
    ("a superscript digit as a cmdlet's number", "New-CsOnlineVoiceRoute -Identity R -Priority \u00b9", 1, 46,
     "takes a whole number"),
]


@pytest.mark.parametrize(("what", "text", "line", "column", "words"), TEXT_CASES, ids=[c[0] for c in TEXT_CASES])
def test_bad_runbook_is_an_error_at(what: str, text: str, line: int, column: int, words: str) -> None:
    with pytest.raises(TenantError) as caught:
        run_powershell(text, "t.ps1")
    assert caught.value.position == SourcePosition("t.ps1", line, column)
    assert words in caught.value.message


BYTE_CASES = [
    # (what, file bytes, line, column)
    ("a Latin-1 byte in a name", GATEWAY.encode() + b"\nNew-CsTenantNetworkSite -Identity M\xfcnchen\n", 2, 36),
    ("a UTF-8 sequence cut short", b"# \xc3", 1, 3),
    ("after a byte-order mark and a multi-byte character", "\ufeff# \u00e9 ".encode() + b"\xff", 1, 5),
]


@pytest.mark.parametrize(("what", "data", "line", "column"), BYTE_CASES, ids=[c[0] for c in BYTE_CASES])
def test_a_runbook_that_is_not_utf8_is_an_error_at_the_first_bad_byte(
        tmp_path: Path, what: str, data: bytes, line: int, column: int) -> None:
    path = tmp_path / "t.ps1"
    path.write_bytes(data)
    with pytest.raises(TenantError) as caught:
        load_powershell(path)
    assert caught.value.position == SourcePosition(str(path), line, column)
    assert caught.value.message.startswith("not UTF-8 text: byte 0x")


def test_a_runbook_that_cannot_be_read_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(TenantError, match="cannot read runbook file") as caught:
        load_powershell(tmp_path)  # a directory
    assert caught.value.position == SourcePosition(str(tmp_path), 1, 1)


def test_removing_a_voice_route_removes_it() -> None:
    # Once an AttributeError: Remove- looked for users granted a voice route, which is not a policy.
    tenant, _ = run_powershell("New-CsOnlineVoiceRoute -Identity R1\nRemove-CsOnlineVoiceRoute -Identity R1", "t.ps1")
    assert tenant.voice_routes == {}


CONTOSO = (Path(__file__).parents[2] / "examples" / "contoso.ps1").read_text(encoding="utf-8-sig")
# Pieces that break runbooks in the ways the random-input pass found worth trying.
PIECES = ["$", "@{", "@(", "}", ")", "'", '"', "`", "-", ",", ";", "|", "\n", "=", "$null", "$true", "-1", "0",
          "99999999999999999999", "9" * 40, "\\d{99999999999999999999}", "(?<a-b>x)", "[", "\u2077", "\u201c",
          "$(", "${", "$env:X", ".Identity", "-WhatIf", "@{Remove='x'}", "-FailoverResponseCodes '50'",
          "Remove-CsOnlineVoiceRoute -Identity 'Redmond 1'", "Remove-CsOnlinePSTNGateway sbc1.contoso.com",
          "-UnansweredDelay 99:99:99", "-EmergencyDialMask ';'", "-PhoneNumberType x", "x" * 70]


@given(st.lists(st.tuples(st.integers(0, len(CONTOSO)), st.sampled_from(PIECES)), min_size=1, max_size=4))
@settings(max_examples=150, deadline=None)
def test_any_edit_of_the_example_runbook_loads_or_fails_with_a_positioned_error(
        edits: list[tuple[int, str]]) -> None:
    text = CONTOSO
    for at, piece in sorted(edits, reverse=True):
        text = text[:at] + piece + text[at:]
    try:
        run_powershell(text, "t.ps1")
    except TenantError as error:
        assert error.position is not None and error.position.path == "t.ps1"
        assert 1 <= error.position.line <= text.count("\n") + 1


@pytest.mark.parametrize("text", [
    "New-CsOnlinePSTNUsage " + "{" * 3000,
    "$x = " + "(" * 3000 + "1" + ")" * 3000,
    "$x = " + "-not " * 3000 + "$true",
], ids=["script blocks", "parentheses", "operators"])
def test_nesting_past_the_stack_is_an_error_not_a_recursion_error(text: str) -> None:
    with pytest.raises(TenantError, match="nested too deeply"):
        run_powershell(text, "deep.ps1")
