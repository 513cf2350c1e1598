"""The event log: one way in (`EventLog.logger(...).info(name, **fields)`), names from the catalogue."""

from __future__ import annotations

import ast
import io
import json
import re
from pathlib import Path

import pytest

from simulator.event_catalogue import CATALOGUE, COMMON_FIELDS, write_markdown
from simulator.events import STRICT_ENV, EventLog, UnknownEvent
from simulator.net import BLACKHOLE, DOWN, UP
from simulator.net.tls import OTHER_FAILURES, REFUSAL_REASONS
from simulator.scenario.loader import ScenarioError, parse_scenario

ROOT = Path(__file__).resolve().parents[1]
GROUPS = sorted({spec.group for spec in CATALOGUE.values()})
# A string constant in the source that names an event (or a group of them, "link.").
EVENT_LIKE = re.compile(rf"^({'|'.join(GROUPS)})\.([a-z_]+(\.[a-z_]+)*)?$")
NOT_EVENTS = {"sip.pstnhub.microsoft.com"}  # a host name that happens to start like one


# -- writing events ------------------------------------------------------------------------------
def test_a_logger_writes_named_events_with_its_context_then_the_fields_at_clock_time():
    now = [12.5]
    log = EventLog(clock=lambda: now[0])
    sbc = log.logger(node="sbc1")
    sbc.info("gateway.health", gateway="sbc1.contoso.com", state="demoted", silent_s=300)
    now[0] = 13.0
    sbc.warning("sbc.proxy", proxy="sip.pstnhub.microsoft.com", state="down")
    log.logger().error("link.down", link="wan-seattle")
    assert [list(r.items()) for r in log.records] == [
        [("t", 12.5), ("event", "gateway.health"), ("node", "sbc1"), ("gateway", "sbc1.contoso.com"),
         ("state", "demoted"), ("silent_s", 300)],
        [("t", 13.0), ("event", "sbc.proxy"), ("node", "sbc1"), ("proxy", "sip.pstnhub.microsoft.com"),
         ("state", "down")],
        [("t", 13.0), ("event", "link.down"), ("link", "wan-seattle")],
    ]
    assert [r["event"] for r in log.select("sbc.", node="sbc1")] == ["sbc.proxy"]


def test_the_time_is_rounded_to_the_microsecond():
    log = EventLog(clock=lambda: 1.23456789)
    log.logger().info("lab.stopped", lab="x")
    assert log.records[0]["t"] == 1.234568


def test_subscribers_see_each_record_as_it_is_written():
    log = EventLog()
    seen: list[dict] = []
    log.subscribe(seen.append)
    log.logger(node="a").info("sip.udp_error", error="port unreachable")
    assert seen == log.records and seen[0]["node"] == "a"


def test_jsonl_output_is_one_compact_event_per_line():
    log = EventLog()
    log.logger().info("lab.stopped", lab="contoso")
    log.logger().info("scenario.note", text="x")
    out = io.StringIO()
    log.write_jsonl(out)
    assert out.getvalue() == ('{"t":0.0,"event":"lab.stopped","lab":"contoso"}\n'
                              '{"t":0.0,"event":"scenario.note","text":"x"}\n')


# -- the strict log ------------------------------------------------------------------------------
@pytest.mark.parametrize(("context", "name", "fields", "problem"), [
    ({"node": "sbc1"}, "sbc.proxy", {"proxy": "sip", "state": "up", "reason": "options"}, None),
    ({}, "link.up", {"link": "wan", "previous": "down"}, None),
    ({"node": "sbc1"}, "sbc.proxi", {"proxy": "sip"}, "event 'sbc.proxi' is not in the catalogue"),
    ({"node": "sbc1"}, "sbc.proxy", {"proxy": "sip", "colour": "red"}, "event 'sbc.proxy' has no field colour"),
    ({"user": "carol"}, "link.up", {"link": "wan"}, "event 'link.up' has no field user"),
])
def test_a_strict_log_refuses_names_and_fields_the_catalogue_does_not_list(context, name, fields, problem):
    log = EventLog(strict=True)
    if problem is None:
        log.logger(**context).info(name, **fields)
        assert log.records[0]["event"] == name
    else:
        with pytest.raises(UnknownEvent, match=problem):
            log.logger(**context).info(name, **fields)
        assert log.records == []


@pytest.mark.parametrize(("env", "strict"), [("1", True), ("0", False), (None, False)])
def test_the_environment_makes_every_log_strict(monkeypatch, env, strict):
    if env is None:
        monkeypatch.delenv(STRICT_ENV, raising=False)
    else:
        monkeypatch.setenv(STRICT_ENV, env)
    assert EventLog().strict is strict
    assert EventLog(strict=False).strict is False


# -- the catalogue -------------------------------------------------------------------------------
def test_docs_events_md_is_generated_from_the_catalogue():
    out = io.StringIO()
    write_markdown(out)
    assert (ROOT / "docs" / "events.md").read_text() == out.getvalue(), \
        "regenerate it: python -m simulator.event_catalogue > docs/events.md"


@pytest.mark.parametrize("spec", CATALOGUE.values(), ids=lambda s: s.name)
def test_each_catalogue_entry_is_a_dotted_name_with_distinct_fields_and_a_meaning(spec):
    assert re.fullmatch(r"[a-z_]+(\.[a-z_]+)+", spec.name)
    assert len(set(spec.fields)) == len(spec.fields) and not {"t", "event"} & set(spec.fields)
    assert spec.meaning and spec.meaning[0].islower()


def test_each_common_field_is_a_field_of_some_event():
    used = {f for spec in CATALOGUE.values() for f in spec.fields}
    assert set(COMMON_FIELDS) <= used


@pytest.mark.parametrize("name", [*(f"link.{s}" for s in (UP, DOWN, BLACKHOLE)), *REFUSAL_REASONS, *OTHER_FAILURES,
                                  "step.passed", "step.failed"])
def test_names_built_at_run_time_are_in_the_catalogue(name):
    assert name in CATALOGUE


def _event_like_strings(path: Path) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and EVENT_LIKE.match(node.value) \
                and node.value not in NOT_EVENTS:
            found.append((node.value, node.lineno))
    return found


SOURCES = sorted(p for p in (ROOT / "simulator").rglob("*.py") if p.name != "event_catalogue.py")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_event_name_the_source_writes_or_matches_is_in_the_catalogue(path):
    """Roles and networks that write names, reports and expectations that match them (whole names,
    or a group prefix such as "link.")."""
    missing = [f"{path.relative_to(ROOT)}:{line}: {text}" for text, line in _event_like_strings(path)
               if text not in CATALOGUE and not (text.endswith(".") and any(n.startswith(text) for n in CATALOGUE))]
    assert not missing, "\n".join(missing)


# -- real scenarios, in strict mode --------------------------------------------------------------
@pytest.mark.e2e
@pytest.mark.parametrize("name", ["branch-outage", "proxy-failover", "certificate-failures", "gateway-failover-503"])
def test_every_event_a_real_scenario_writes_is_in_the_catalogue(name, catalogue_run):
    """The run's event log is strict (tests/conftest.py): a name or field it lacks would be an error."""
    result, records = catalogue_run(name)
    assert result.passed, result.error
    assert {r["event"] for r in records} <= CATALOGUE.keys()
    assert not sorted({(r["event"], k) for r in records for k in r.keys() - {"t", "event"}
                       if k not in CATALOGUE[r["event"]].fields})
    assert not [r for r in records if "UnknownEvent" in json.dumps(r, default=str)]


@pytest.mark.parametrize(("expect", "problem"), [
    ("{event: tls.expird}", "s.yaml:5:21: unknown event 'tls.expird' (docs/events.md lists them)"),
    ("{event: tls.expired, with: {sid: server}}", "s.yaml:5:41: tls.expired has no field 'sid' (it has node, side, peer, detail)"),
])
def test_a_scenario_that_expects_an_event_or_field_the_catalogue_lacks_is_refused_where_it_says_so(expect, problem):
    text = (f"lab: {ROOT / 'examples' / 'contoso.yaml'}\ntenant: {ROOT / 'examples' / 'contoso.yaml'}\n"
            f"steps:\n  - wait: 1s\n  - expect: {expect}\n")
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text, "s.yaml")
    assert str(err.value) == problem
