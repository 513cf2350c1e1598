"""The lab file: examples/labs/contoso.yaml as the issue describes it, and every mistake at FILE:LINE:COL."""

from __future__ import annotations

import pytest

from simulator.lab import LabError, load_lab_spec, parse_lab
from tests.support.contoso import CONTOSO_LAB

GOOD = """\
lab: mini
sites: [{name: a}, {name: b}]
links:
  - {name: wan, a: a, b: b, latency: 20ms}
hosts:
  - {name: sbc1.contoso.com, site: a, address: 10.0.0.1}
  - {name: pstn.carrier.example, site: b}
nodes:
  - {name: pstn, host: pstn.carrier.example, role: pstn, options: {numbers: {"4255550199": answer}}}
  - {name: sbc1, host: sbc1.contoso.com, role: sbc, options: {carrier: pstn}}
"""


def test_contoso_lab_has_what_the_issue_lists() -> None:
    spec = load_lab_spec(CONTOSO_LAB)
    roles = {n.name: n.role for n in spec.nodes.values()}
    assert [n for n, r in roles.items() if r == "teams_proxy"] == ["sip", "sip2", "sip3"]
    assert {spec.nodes[n].host for n in ("sip", "sip2", "sip3")} == {
        "sip.pstnhub.microsoft.com", "sip2.pstnhub.microsoft.com", "sip3.pstnhub.microsoft.com"}
    assert {n for n, r in roles.items() if r == "sbc"} == {"sbc1", "sbc2", "sbc-sea"}
    assert spec.nodes["sbc-sea"].options["sba"] == "sba1"
    clients = {n.options["user"]: spec.host(n.host).site for n in spec.nodes_with_role("teams_client")}
    assert clients == {"alice@contoso.com": "hq", "bob@contoso.com": "hq", "carol@contoso.com": "seattle",
                       "dave@contoso.com": "seattle", "erin@contoso.com": "seattle"}
    wan = spec.links["wan-seattle"]
    assert {wan.a, wan.b} == {"seattle", "internet"} and wan.latency == pytest.approx(0.020)
    assert spec.host("sba1.contoso.com").site == spec.host("sbc-sea.contoso.com").site == "seattle"
    # the PSTN PoPs share one number plan (a YAML anchor), parsed into behaviours
    assert spec.nodes["pstn-sea"].options["numbers"] == spec.nodes["pstn-hq"].options["numbers"]
    assert spec.nodes["pstn-hq"].options["numbers"]["4255550188"] == {"behaviour": "answer", "answer_after": 8.0}


def test_a_good_file_parses() -> None:
    spec = parse_lab(GOOD, "mini.yaml")
    assert spec.name == "mini" and spec.links["wan"].latency == pytest.approx(0.02)
    assert spec.host("SBC1.contoso.com").address == "10.0.0.1"


def _edit(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new)


@pytest.mark.parametrize("text, line, col, message", [
    (_edit("lab: mini", "lab: mini\nnetwork: sim"), 2, 1, "unknown key 'network' in the lab file"),
    (_edit("b: b, latency", "b: c, latency"), 4, 26, "link wan: unknown site 'c'"),
    (_edit("b: b, latency", "b: a, latency"), 4, 26, "joins site 'a' to itself"),
    (_edit("latency: 20ms", "latency: fast"), 4, 38, "latency of link wan must be a duration like 20ms"),
    (_edit("latency: 20ms", "loss: 2"), 4, 35, "loss of link wan must be a probability"),
    (_edit("site: a, address: 10.0.0.1", "site: a, address: 10.0.0.300"), 6, 48,
     "must be an IPv4 address"),
    (_edit("- {name: pstn.carrier.example, site: b}", "- {name: SBC1.contoso.com, site: b}"), 7, 12,
     "host name 'SBC1.contoso.com' is declared twice"),
    (_edit("site: a, address", "site: x, address"), 6, 36, "unknown site 'x'"),
    (_edit("site: a, address: 10.0.0.1}", "site: a, certificate: {variant: wrong-sans}}"), 6, 62,
     "unknown certificate variant 'wrong-sans'"),
    (_edit("host: sbc1.contoso.com, role: sbc", "host: sbc9.contoso.com, role: sbc"), 10, 24,
     "unknown host 'sbc9.contoso.com'"),
    (_edit("host: sbc1.contoso.com, role: sbc", "host: pstn.carrier.example, role: sbc"), 10, 24,
     "already runs node pstn"),
    (_edit("role: sbc", "role: gateway"), 10, 48, "unknown role 'gateway'"),
    (_edit("{carrier: pstn}", "{carrier: sbc1}"), 10, 5, "option carrier names 'sbc1', which is not a pstn node"),
    (_edit("{carrier: pstn}", "{carier: pstn}"), 10, 63, "unknown option 'carier' for a sbc node"),
    (_edit('"4255550199": answer', '"4255550199": hold'), 9, 92, "unknown behaviour 'hold'"),
    (_edit('"4255550199": answer', '"42-55": answer'), 9, 78, "is not a phone number"),
    (_edit("lab: mini", "lab: mini\nsettings: {client_detection: 20}"), 2, 12,
     "unknown setting 'client_detection'; did you mean client_detection_s"),
    (_edit("lab: mini", "lab: mini\nsettings: {client_detection_s: -1}"), 2, 32, "must be a finite number >= 0"),
    (_edit("- {name: sbc1, host: sbc1.contoso.com, role: sbc, options: {carrier: pstn}}",
           "- {name: c, host: sbc1.contoso.com, role: teams_client}"), 10, 5,
     "teams_client node c needs options: {user: <UPN>}"),
    ("lab: x\nsites: [a]\nhosts: [{name: h.example.com, site: a}]\nnodes: [\n", 5, 1, "not valid YAML"),
])
def test_mistakes_point_at_file_line_col(text: str, line: int, col: int, message: str) -> None:
    with pytest.raises(LabError) as caught:
        parse_lab(text, "lab.yaml")
    err = caught.value
    assert message in err.message
    assert (err.position.path, err.position.line, err.position.column) == ("lab.yaml", line, col), str(err)
    assert str(err).startswith(f"lab.yaml:{line}:{col}: ")


def test_missing_sections_and_files_are_named(tmp_path) -> None:
    with pytest.raises(LabError, match=r"lab.yaml:1:1: the lab file needs 'hosts', 'nodes'"):
        parse_lab("lab: x\n", "lab.yaml")
    with pytest.raises(LabError, match=r"nowhere.yaml:1:1: cannot read lab file"):
        load_lab_spec(tmp_path / "nowhere.yaml")
    with pytest.raises(LabError, match="the lab file is empty"):
        parse_lab("", "lab.yaml")


def test_role_options_of_other_roles_pass_through() -> None:
    text = GOOD + "  - {name: sba1, host: sba1.contoso.com, role: sba, options: {anything: [1, 2]}}\n"
    text = text.replace("hosts:\n", "hosts:\n  - {name: sba1.contoso.com, site: a}\n")
    spec = parse_lab(text, "lab.yaml")
    assert spec.nodes["sba1"].options == {"anything": [1, 2]}
