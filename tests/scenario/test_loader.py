"""Scenario files: what loads, and every mistake reported at FILE:LINE:COL with what was expected."""

from pathlib import Path

import pytest

from simulator.scenario.loader import check_against_lab, load_scenario, parse_scenario
from simulator.scenario.reader import ScenarioError, format_duration, parse_duration

REPO = Path(__file__).resolve().parents[2]
HEAD = f"lab: {REPO / 'examples' / 'contoso.yaml'}\ntenant: {REPO / 'examples' / 'contoso.yaml'}\n"


def parse(steps: str, head: str = HEAD):
    return parse_scenario(head + "steps:\n" + steps, "s.yaml")


def test_every_step_kind_loads_with_its_defaults_and_names():
    s = parse("""\
  - cut: wan-seattle
  - cut: {link: wan-seattle, mode: blackhole}
  - impair: {link: wan-seattle, latency: 200ms, loss: 0.05}
  - wait: 90s
  - wait: {until: {client: carol@contoso.com, state: appliance, registrar: sba1.contoso.com}, timeout: 2m}
  - expect: [{gateway: sbc-sea.contoso.com, health: demoted}, {sba: sba1, cache_version: 2, at_least: true},
             {cdrs: 1, node: sba1, uploaded: true}]
  - call:
      from: carol@contoso.com
      to: "5550199"
      callee: alice@contoso.com
      actions: [{after: 2, answer: }, {after: 10, hold: }, {after: 20, transfer: "+14255550102"}]
      hangup_after: 1h
      expect: {status: 200, answered_by: alice@contoso.com, path: [carol, sba1, sbc-sea], media: [carol, sbc-sea]}
  - change: {add_user: {upn: frank@contoso.com}}
  - sync: sba1
  - restart: carol@contoso.com
  - name: back online
    at: 30m
    restore: wan-seattle
""")
    kinds = [st.kind for st in s.steps]
    assert kinds == ["cut", "cut", "impair", "wait", "wait", "expect", "call", "change", "sync", "restart", "restore"]
    assert (s.steps[0].link, s.steps[0].mode, s.steps[0].name) == ("wan-seattle", "down", "cut wan-seattle")
    assert s.steps[1].mode == "blackhole"
    assert s.steps[2].impairment == {"latency": 0.2, "loss": 0.05}
    assert (s.steps[3].duration, s.steps[3].until, s.steps[3].name) == (90.0, None, "wait 90s")
    assert s.steps[4].timeout == 120 and s.steps[4].name == "wait until carol@contoso.com appliance at sba1.contoso.com"
    assert [c.subject for c in s.steps[5].conditions] == ["gateway", "sba", "cdrs"]
    assert [(a.after, a.action, a.target) for a in s.steps[6].actions] == [
        (2, "answer", None), (10, "hold", None), (20, "transfer", "+14255550102"), (3600, "hangup", None)]
    assert s.steps[7].change == {"add_user": {"upn": "frank@contoso.com"}}
    assert s.steps[10].name == "back online" and s.steps[10].at == 1800
    assert str(s.steps[0].position) == "s.yaml:4:5"


@pytest.mark.parametrize("steps, where, message", [
    ("  - cutt: wan\n", "4:5", "unknown key 'cutt' in step 1 (expected one of: name, at, cut"),
    ("  - {cut: wan, restore: wan}\n", "4:5", "must have exactly one action"),
    ("  - cut: {link: wan, mode: sideways}\n", "4:28", "mode must be one of down, blackhole, not 'sideways'"),
    ("  - cut: {mode: down}\n", "4:10", "cut needs 'link'"),
    ("  - wait: soon\n", "4:11", "wait must be a duration like 30s, 5m, 2h, 7d or a number of seconds, not 'soon'"),
    ("  - wait: {until: {client: carol, state: online}}\n", "4:11", "wait needs 'until' (a condition) and 'timeout'"),
    ("  - expect: {client: carol, state: asleep}\n", "4:36", "state must be one of online, offline, appliance"),
    ("  - expect: {client: carol}\n", "4:13", "needs 'state'"),
    ("  - expect: {client: carol, state: online, colour: red}\n", "4:44", "unknown key 'colour' in expect (client)"),
    ("  - expect: {state: online}\n", "4:13", "must name exactly one of client, gateway, sba, cdrs, route"),
    ("  - expect: {client: carol, state: offline, registrar: sba1}\n", "4:45", "an offline client has no registrar"),
    ("  - expect: {route: {user: alice@contoso.com, dial: '5550100'}}\n", "4:13", "needs at least one of normalized"),
    ("  - impair: {link: wan, loss: 2}\n", "4:31", "loss (a fraction, or a percentage: 12%) must be between 0 and 1"),
    ("  - impair: {link: wan, loss: 120%}\n", "4:31", "must be between 0% and 100%, not 120%"),
    ("  - impair: {link: wan, loss: lots%}\n", "4:31", "must be a number, not 'lots%'"),
    ("  - impair: {link: wan, direction: seattle, loss: 1}\n", "4:36", "direction must be FROM-SITE->TO-SITE"),
    ("  - impair: {link: wan, direction: a->b, latency: 1s}\n", "4:36", "a one-way impairment is a loss only"),
    ("  - call: {from: carol@contoso.com}\n", "4:11", "call needs 'to'"),
    ("  - call: {from: a@b, to: '1', actions: [{after: 5, dance: }]}\n", "4:53", "unknown key 'dance' in a call action"),
    ("  - call: {from: a@b, to: '1', actions: [{after: 9, hold: }, {after: 5, resume: }]}\n", "4:70",
     "call actions must be in time order"),
    ("  - call: {from: a@b, to: '1', expect: {status: 999}}\n", "4:49", "status must be between 100 and 699"),
    ("  - call: {from: a@b, to: '1', answer_after: 2}\n", "4:32", "answer_after needs 'callee'"),
    ("  - {at: 60, cut: wan}\n  - {at: 30, restore: wan}\n", "5:5", "at: 30 s is before an earlier step's at: 60 s"),
    ("  - change: add a user\n", "4:13", "change must be a mapping with one key, the kind of change (add_user"),
    ("  - change: {add_users: {upn: x}}\n", "4:14", "unknown change 'add_users' (expected one of add_user"),
    ("  - 'cut'\n", "4:5", "step 1 must be a mapping"),
])
def test_a_bad_step_is_an_error_at_its_line_and_column(steps, where, message):
    with pytest.raises(ScenarioError) as err:
        parse(steps)
    assert str(err.value).startswith(f"s.yaml:{where}: "), str(err.value)
    assert message in str(err.value)


@pytest.mark.parametrize("text, where, message", [
    ("lab: x.yaml\n", "1:1", "the scenario file needs 'tenant', 'steps'"),
    (HEAD + "stpes: []\n", "3:1", "unknown key 'stpes' in the scenario file"),
    (HEAD + "settings: {client_detection_z: 3}\nsteps: [{wait: 1}]\n", "3:12", "client_detection_z"),
    (HEAD + "settings: {client_detection_s: -3}\nsteps: [{wait: 1}]\n", "3:32", "client_detection_s"),
    (HEAD + "steps: []\n", "3:8", "steps must list at least one step"),
    (HEAD.replace("contoso.yaml\ntenant", "nope.yaml\ntenant") + "steps: [{wait: 1}]\n", "1:6", "lab file"),
    (HEAD + "steps: [{wait: 1}\n", "4:1", "not valid YAML"),
    ("", "1:1", "the scenario file is empty"),
    (f"lab: {'x' * 5000}.yaml\ntenant: t.yaml\nsteps: [{{wait: 1}}]\n", "1:6", "lab file 'xxxx"),
])
def test_a_bad_file_is_an_error_at_its_line(text, where, message):
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text, "s.yaml")
    assert str(err.value).startswith(f"s.yaml:{where}: "), str(err.value)
    assert message in str(err.value)


def test_paths_are_relative_to_the_scenario_file(tmp_path):
    (tmp_path / "labs").mkdir()
    (tmp_path / "labs" / "lab.yaml").write_text("x: 1\n")
    (tmp_path / "t.ps1").write_text("\n")
    (tmp_path / "s.yaml").write_text("lab: labs/lab.yaml\ntenant: t.ps1\nseed: 7\nsteps: [{wait: 7d}]\n")
    s = load_scenario(tmp_path / "s.yaml")
    assert s.lab == str(tmp_path / "labs" / "lab.yaml") and s.tenant == str(tmp_path / "t.ps1")
    assert s.seed == 7 and s.name == "s" and s.steps[0].duration == 7 * 86400


def test_a_missing_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(ScenarioError, match=r"nope.yaml:1:1: cannot read scenario file"):
        load_scenario(tmp_path / "nope.yaml")


@pytest.mark.parametrize("text, seconds", [(30, 30.0), (2.5, 2.5), ("250ms", 0.25), ("5m", 300.0),
                                           ("2h", 7200.0), ("7d", 604800.0), ("1.5 s", 1.5)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("seconds, text", [(604800, "7d"), (7200, "2h"), (300, "5m"), (90, "90s"), (0.25, "250ms"),
                                           (1.5, "1.5s"), (0, "0ms")])
def test_durations_are_named_in_their_largest_whole_unit(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("text", ["-1", "soon", "5 weeks", True, -3])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("steps, where, message", [
    ("  - cut: wan-nowhere\n", "4:5", "no link 'wan-nowhere' (links in contoso.yaml: dc-asia, dc-emea"),
    ("  - sync: sbc-sea\n", "4:5", "no SBA 'sbc-sea' (SBAs in contoso.yaml: sba1)"),
    ("  - restart: zed@contoso.com\n", "4:5", "no client for 'zed@contoso.com' (clients in contoso.yaml: alice@"),
    ("  - call: {from: '4255550199', pstn: sbc1, to: '1'}\n", "4:5", "no PSTN carrier node 'sbc1'"),
    ("  - expect: [{client: [carol, zed@contoso.com], state: online}]\n", "4:14", "no client for 'zed@contoso.com'"),
])
def test_names_a_step_uses_are_checked_against_the_lab(steps, where, message):
    lab = f"lab: {REPO / 'examples' / 'labs' / 'contoso.yaml'}\ntenant: {REPO / 'examples' / 'contoso.yaml'}\n"
    scenario = parse(steps, head=lab)
    with pytest.raises(ScenarioError) as err:
        check_against_lab(scenario)
    assert str(err.value).startswith(f"s.yaml:{where}: "), str(err.value)
    assert message in str(err.value)


@pytest.mark.parametrize("path", sorted((REPO / "scenarios").glob("*.yaml")), ids=lambda p: p.stem)
def test_the_catalogue_names_only_what_its_labs_have(path):
    check_against_lab(load_scenario(path))
