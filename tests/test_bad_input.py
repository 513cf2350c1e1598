"""Bad tenant, lab and scenario files: each is a typed error at FILE:LINE:COL, never a traceback."""

from pathlib import Path

import pytest

from simulator.errors import InputError
from simulator.lab.spec import LabError, load_lab_spec
from simulator.scenario.loader import load_scenario
from simulator.scenario.reader import ScenarioError
from simulator.tenant.errors import TenantError
from simulator.tenant.yaml_loader import load_yaml

REPO = Path(__file__).resolve().parents[1]
LAB = (REPO / "examples" / "labs" / "contoso.yaml").read_text(encoding="utf-8")
TENANT = (REPO / "examples" / "contoso.yaml").read_text(encoding="utf-8")
SCENARIO = (f"lab: {REPO / 'examples' / 'labs' / 'contoso.yaml'}\ntenant: {REPO / 'examples' / 'contoso.yaml'}\n"
            "steps:\n  - wait: 1s\n")

LOADERS = {"tenant": (load_yaml, TenantError, TENANT), "lab": (load_lab_spec, LabError, LAB),
           "scenario": (load_scenario, ScenarioError, SCENARIO)}


def load(tmp_path, kind: str, data: bytes):
    loader, _, _ = LOADERS[kind]
    path = tmp_path / f"{kind}.yaml"
    path.write_bytes(data)
    return loader(path), path


def _second_line_at(text: str, insert: bytes, column: int) -> bytes:
    """`text` with `insert` put on line 2 after `column - 1` characters."""
    first, second, rest = text.encode().split(b"\n", 2)
    return first + b"\n" + second[:column - 1] + insert + second[column - 1:] + b"\n" + rest


@pytest.mark.parametrize("kind", LOADERS)
@pytest.mark.parametrize("insert, message", [
    (b"\xff", "not UTF-8 text: byte 0xff invalid start byte"),
    (b"\xc3(", "not UTF-8 text: byte 0xc3 invalid continuation byte"),
    (b"\x00", "not valid YAML: control character U+0000 is not allowed"),
    (b"\x07", "not valid YAML: control character U+0007 is not allowed"),
    (b"\x1b", "not valid YAML: control character U+001B is not allowed"),
])
def test_bytes_that_are_not_yaml_text_are_an_error_at_their_line_and_column(tmp_path, kind, insert, message):
    _, error, text = LOADERS[kind]
    with pytest.raises(error) as err:
        load(tmp_path, kind, _second_line_at(text, insert, 3))
    assert str(err.value) == f"{tmp_path / (kind + '.yaml')}:2:3: {message}"


@pytest.mark.parametrize("kind, text, where, message", [
    ("tenant", "pstn_usages: [!!int Local]\n", "1:15", "a PSTN usage: cannot read 'Local' as tag:yaml.org,2002:int"),
    ("tenant", "pstn_usages: [Local]\n!!int users: []\n", "2:1", "cannot read 'users' as tag:yaml.org,2002:int"),
    ("tenant", "pstn_usages: [!!timestamp soon]\n", "1:15", "cannot read 'soon' as tag:yaml.org,2002:timestamp"),
    ("tenant", "pstn_usages: [!custom Local]\n", "1:15", "cannot read 'Local' as !custom"),
    ("lab", "!!float lab: x\nhosts: []\nnodes: []\n", "1:1", "cannot read 'lab' as tag:yaml.org,2002:float"),
    ("scenario", SCENARIO.replace("wait: 1s", "wait: !!int 1s"), "4:11", "cannot read '1s' as tag:yaml.org,2002:int"),
])
def test_a_tag_that_does_not_fit_its_value_is_an_error_on_any_key_or_value(tmp_path, kind, text, where, message):
    _, error, _ = LOADERS[kind]
    with pytest.raises(error) as err:
        load(tmp_path, kind, text.encode())
    assert str(err.value).startswith(f"{tmp_path / (kind + '.yaml')}:{where}: "), str(err.value)
    assert message in str(err.value)


ZEROS = "1" + "0" * 400


@pytest.mark.parametrize("step, message", [
    (f"expect: {{event: call.ended, at_least: {ZEROS}}}", "at_least must be between 0 and 1e+09, not 10000000"),
    (f"expect: {{cdrs: {ZEROS}}}", "cdrs (a count) must be between 0 and 1e+09"),
    (f"expect: {{sba: sba1, cache_version: {ZEROS}}}", "cache_version must be between 0 and 1e+09"),
    (f"wait: {ZEROS}", "wait (10000000000000000000... (401 characters)) is longer than the run's timeout"),
    ("wait: 1.0e+400", "wait (1.0e+400) is longer than the run's timeout"),
    (f"impair: {{link: wan, loss: {ZEROS}}}", "loss (a fraction, or a percentage: 12%) must be between 0 and 1"),
    (f"call: {{from: a@b, to: '1', expect: {{status: {ZEROS}}}}}", "status must be between 100 and 699"),
    ("wait: 1s\nsettings: {client_detection_s: " + ZEROS + "}", "setting 'client_detection_s' must be a finite number"),
    ("wait: 1s\nseed: " + ZEROS, "seed must be between 0 and 9223372036854775807, not 1000"),
])
def test_an_enormous_number_is_an_error_not_an_overflow(tmp_path, step, message):
    with pytest.raises(ScenarioError) as err:
        load(tmp_path, "scenario", SCENARIO.replace("wait: 1s", step).encode())
    assert message in str(err.value)
    assert str(err.value).startswith((f"{tmp_path / 'scenario.yaml'}:4:", f"{tmp_path / 'scenario.yaml'}:5:"))


@pytest.mark.parametrize("text, where", [
    ("  - call: {from: a@b, to: '1', hangup_after: 1000000000000s}\n", "4:46"),
    ("  - wait: 9d\n", "4:11"),
    ("  - {at: 10d, wait: 1s}\n", "4:10"),
    ("  - wait: {until: {cdrs: 1}, timeout: 30d}\n", "4:39"),
])
def test_a_duration_longer_than_the_runs_timeout_is_refused_at_load_time(tmp_path, text, where):
    with pytest.raises(ScenarioError) as err:
        load(tmp_path, "scenario", SCENARIO.replace("  - wait: 1s\n", text).encode())
    assert f"scenario.yaml:{where}: " in str(err.value) and "longer than the run's timeout (691200 s)" in str(err.value)


def test_a_lab_setting_too_large_for_a_number_is_an_error(tmp_path):
    with pytest.raises(LabError, match=r"lab.yaml:\d+:\d+: setting 'client_detection_s' must be a finite number"):
        load(tmp_path, "lab", LAB.replace("settings: {}", f"settings: {{client_detection_s: {ZEROS}}}").encode())


def test_a_timeout_raises_the_longest_duration_allowed(tmp_path):
    scenario, _ = load(tmp_path, "scenario", (SCENARIO.replace("  - wait: 1s\n", "  - wait: 9d\n")
                                              + "timeout: 10d\n").encode())
    assert scenario.steps[0].duration == 9 * 86400


def test_a_lab_node_without_a_path_to_its_carrier_fails_when_the_lab_loads(tmp_path):
    text = LAB.replace("  - {name: trunk-seattle, a: seattle, b: pstn-sea, latency: 2ms}\n", "")
    assert text != LAB
    with pytest.raises(LabError) as err:
        load(tmp_path, "lab", text.encode())
    assert str(err.value).startswith(f"{tmp_path / 'lab.yaml'}:")
    assert "node sbc-sea (site seattle) has no path over the links to node pstn-sea (site pstn-sea), " \
           "its PSTN carrier" in str(err.value)


def test_a_lab_client_cut_off_from_the_proxies_fails_when_the_lab_loads(tmp_path):
    text = LAB.replace("  - {name: wan-hq, a: hq, b: internet, latency: 20ms}\n", "")
    with pytest.raises(LabError, match="node sbc1 \\(site hq\\) has no path over the links to node sip "):
        load(tmp_path, "lab", text.encode())


@pytest.mark.parametrize("kind", LOADERS)
def test_nesting_too_deep_is_an_error(tmp_path, kind):
    _, error, _ = LOADERS[kind]
    with pytest.raises(error, match="nested too deeply|not valid YAML"):
        load(tmp_path, kind, b"x: " + b"[" * 50_000)


def test_every_loader_error_is_an_input_error():
    assert all(issubclass(error, InputError) for _, error, _ in LOADERS.values())
    assert not issubclass(ScenarioError, TenantError) and not issubclass(LabError, TenantError)
