"""`drlab route --check`: a routing regression suite with diffs per miss and JUnit XML."""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from simulator.tenant import cli
from simulator.tenant.check import load_cases
from simulator.tenant.errors import TenantError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(list(argv)))


@pytest.mark.parametrize("tenant", ["contoso.yaml", "contoso.ps1"])
def test_contoso_cases_all_hold(tenant, tmp_path, capsys) -> None:
    junit = tmp_path / "r.xml"
    rc = _run("--tenant", str(EXAMPLES / tenant), "--check", str(EXAMPLES / "contoso-routing-cases.yaml"),
              "--junit", str(junit))
    assert rc == 0, capsys.readouterr().out
    suite = ET.parse(junit).getroot()
    assert (suite.tag, suite.get("failures"), int(suite.get("tests")) >= 8) == ("testsuite", "0", True)


def test_a_miss_prints_a_diff_and_fails(tmp_path, capsys) -> None:
    cases = tmp_path / "c.yaml"
    cases.write_text("cases:\n  - user: alice@contoso.com\n    dial: '5550199'\n    usage: International\n"
                     "  - {user: bob@contoso.com, dial: '0123', rule: RedmondExtension}\n")
    junit = tmp_path / "r.xml"
    rc = _run("--tenant", str(EXAMPLES / "contoso.yaml"), "--check", str(cases), "--junit", str(junit))
    out = capsys.readouterr().out
    assert rc == 1
    assert "usage: expected 'International', got 'US and Canada'" in out
    assert f"({cases}:2:5)" in out
    assert "1 of 2 routing cases hold" in out
    failures = ET.parse(junit).getroot().findall("testcase/failure")
    assert len(failures) == 1 and "usage: expected" in failures[0].get("message")


@pytest.mark.parametrize(("text", "where", "message"), [
    ("cases:\n  - {user: a, dial: '1', usage: x, colour: red}\n", "2:36", "unknown key 'colour'"),
    ("cases:\n  - {user: a, usage: x}\n", "2:5", "needs 'dial'"),
    ("cases:\n  - {user: a, dial: '1'}\n", "2:5", "at least one expectation"),
    ("tests: []\n", "1:1", "unknown top-level key 'tests'"),
    ("cases:\n  - {user: a, dial: '1', no_route: maybe}\n", "2:36", "must be true or false"),
])
def test_errors_in_the_cases_file_point_at_the_line(tmp_path, text, where, message) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(TenantError) as err:
        load_cases(p)
    assert str(err.value).startswith(f"{p}:{where}: ") and message in str(err.value), str(err.value)
