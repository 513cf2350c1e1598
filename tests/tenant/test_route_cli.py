"""`drlab route`: output shape, exit status 0 (route) / 1 (none) / 2 (bad input with FILE:LINE:COL)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from simulator.tenant import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(list(argv)))


@pytest.mark.parametrize("tenant", ["contoso.yaml", "contoso.ps1"])
def test_json_decision_has_exactly_the_documented_keys(tenant, capsys) -> None:
    rc = _run("--tenant", str(EXAMPLES / tenant), "--user", "alice@contoso.com", "--dial", "5550199",
              "--seed", "7", "--json")
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert list(out) == ["user", "dialed", "normalized", "dial_plan", "rule", "usage", "routes", "gateways", "lbr",
                         "reasons", "caller_id", "location"]
    assert (out["normalized"], out["dial_plan"], out["rule"], out["usage"]) == (
        "+14255550199", "Redmond", "Local7", "US and Canada")
    assert [r["name"] for r in out["routes"]] == ["Redmond 1", "Redmond 2", "Other +1"]
    assert sorted(out["gateways"]) == ["sbc-sea.contoso.com", "sbc1.contoso.com", "sbc2.contoso.com"]


def test_same_seed_same_output(capsys) -> None:
    args = ("--tenant", str(EXAMPLES / "contoso.yaml"), "--user", "alice@contoso.com", "--dial", "5550199", "--json")
    _run(*args, "--seed", "5")
    first = capsys.readouterr().out
    _run(*args, "--seed", "5")
    assert capsys.readouterr().out == first


def test_no_route_exits_1_and_says_why(capsys) -> None:
    rc = _run("--tenant", str(EXAMPLES / "contoso.yaml"), "--user", "bob@contoso.com", "--dial", "+442071234567")
    out = capsys.readouterr().out
    assert rc == 1
    assert "no route" in out and "US Only" in out


def test_human_output_lists_routes_and_reasons(capsys) -> None:
    assert _run("--tenant", str(EXAMPLES / "contoso.yaml"), "--user", "carol@contoso.com", "--dial", "2065550100") == 0
    out = capsys.readouterr().out
    assert "Seattle Local" in out and "sbc-sea.contoso.com" in out and "why:" in out


def test_bad_tenant_exits_2_with_file_line_col(tmp_path, capsys) -> None:
    bad = tmp_path / "t.yaml"
    bad.write_text("pstn_usages: [a]\nvoice_routes:\n  - {name: R, nummber_pattern: x}\n")
    assert _run("--tenant", str(bad), "--user", "a@x.com", "--dial", "1") == 2
    assert capsys.readouterr().err.startswith(f"{bad}:3:15: unknown key 'nummber_pattern'")


def test_unknown_user_exits_2(capsys) -> None:
    assert _run("--tenant", str(EXAMPLES / "contoso.yaml"), "--user", "zed@contoso.com", "--dial", "1") == 2
    assert "zed@contoso.com" in capsys.readouterr().err


def test_runbook_warnings_go_to_stderr_and_json_stays_clean(capsys) -> None:
    assert _run("--tenant", str(EXAMPLES / "contoso.ps1"), "--user", "erin@contoso.com", "--dial", "0201",
                "--json") == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["normalized"] == "+12065550201"
    assert f"{EXAMPLES / 'contoso.ps1'}:11:1: warning: Connect-MicrosoftTeams changes nothing drlab" in captured.err


def test_dial_911_from_an_address_routes_by_the_sites_emergency_policy_and_says_so(capsys) -> None:
    rc = _run("--tenant", str(EXAMPLES / "contoso.yaml"), "--user", "carol@contoso.com", "--dial", "911",
              "--ip", "10.20.3.40/24", "--json")
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["emergency"] == {"policy": "Seattle 911", "number": "911",
                                "location": "12c9fce7-327c-533f-b17d-198f6c2f0f8c",
                                "pidf_lo": ["sbc-sea.contoso.com"]}
    assert out["location"] == {"site": "Seattle", "subnet": "10.20.0.0/16",
                               "lis_location": "12c9fce7-327c-533f-b17d-198f6c2f0f8c"}
    assert "emergency call routing policy 'Seattle 911' (network site 'Seattle') applies" in out["reasons"]


def test_the_table_shows_location_caller_id_and_the_emergency_call(capsys) -> None:
    assert _run("--tenant", str(EXAMPLES / "contoso.yaml"), "--user", "dave@contoso.com", "--dial", "911") == 0
    out = capsys.readouterr().out
    assert "location: site: Seattle" in out and "caller ID: +12065550202" in out
    assert "emergency call to 911   policy: Seattle 911" in out
    assert _run("--tenant", str(EXAMPLES / "contoso.yaml"), "--user", "dave@contoso.com", "--dial", "2065550100") == 0
    assert "caller ID: anonymous   privacy: id   policy: Withheld" in capsys.readouterr().out


@pytest.mark.parametrize(("option", "value"), [("--ip", "10.20.3"), ("--ip", "seattle"), ("--public-ip", "10.0.0.0/8")])
def test_an_address_that_is_not_one_exits_2(option, value, capsys) -> None:
    assert _run("--tenant", str(EXAMPLES / "contoso.yaml"), "--user", "carol@contoso.com", "--dial", "911",
                option, value) == 2
    assert f"{option} {value!r} is not an IP address" in capsys.readouterr().err
