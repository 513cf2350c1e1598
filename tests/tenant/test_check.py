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
    ("cases:\n  - {user: a, dial: '1', caller_id: {number: '1', colour: red}}\n", "2:51", "unknown key 'colour'"),
    ("cases:\n  - {user: a, dial: '1', caller_id: {privacy: user}}\n", "2:47", "'id' or 'none'"),
    ("cases:\n  - {user: a, dial: '1', emergency: true}\n", "2:37", "a mapping (policy, number"),
    ("cases:\n  - {user: a, dial: '1', location: [Seattle]}\n", "2:36", "location"),
    ("cases:\n  - {user: a, dial: '1', ip: 10.1.2, usage: x}\n", "2:30", "ip must be an IP address"),
    ("cases:\n  - {user: a, dial: '1', public_ip: 10.1.2.0/24, usage: x}\n", "2:37", "public_ip must be an IP"),
    ("cases:\n  - {user: a, dial: '1', emergency: {pidf_lo: sbc1}}\n", "2:47", "pidf_lo must be a list"),
])
def test_errors_in_the_cases_file_point_at_the_line(tmp_path, text, where, message) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(TenantError) as err:
        load_cases(p)
    assert str(err.value).startswith(f"{p}:{where}: ") and message in str(err.value), str(err.value)


def test_a_case_compares_only_the_keys_it_gives_of_caller_id_location_and_emergency(tmp_path) -> None:
    cases = tmp_path / "c.yaml"
    cases.write_text("cases:\n"
                     "  - {user: dave@contoso.com, dial: '2065550100', caller_id: {privacy: id}}\n"
                     "  - {user: carol@contoso.com, dial: '911', ip: 10.20.3.9/24, location: {subnet: 10.20.0.0/16},\n"
                     "     emergency: {number: '911', pidf_lo: [sbc-sea.contoso.com]}}\n"
                     "  - {user: carol@contoso.com, dial: '911', emergency: false}\n")
    from simulator.tenant.check import run_cases
    from simulator.tenant.yaml_loader import load_yaml

    outcomes = run_cases(load_yaml(EXAMPLES / "contoso.yaml"), load_cases(cases))
    assert [(o.ok, o.misses) for o in outcomes] == [
        (True, []), (True, []),
        (False, ["emergency: expected None, got {'policy': 'Seattle 911', 'number': '911', "
                 "'location': '12c9fce7-327c-533f-b17d-198f6c2f0f8c', 'pidf_lo': ['sbc-sea.contoso.com']}"])]
