import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import dpkt
import pytest

from simulator.errors import SourcePosition
from simulator.report import FAILED, PASSED, RunResult, StepResult, compute_metrics, write_outputs
from simulator.report.html import render_html
from simulator.report.pcap import TSHARK_DECODE_AS
from simulator.report.timeline import format_time, timeline

from .synthetic import invite, outage_log


def result_for(records, failed=False) -> RunResult:
    steps = [StepResult("cut wan-seattle", PASSED, 100.0, position=SourcePosition("scenarios/s.yaml", 10, 5),
                        wall_s=0.25),
             StepResult("expect carol appliance", FAILED if failed else PASSED, 200.0,
                        "carol@contoso.com: expected appliance, got offline" if failed else "",
                        SourcePosition("scenarios/s.yaml", 12, 7), wall_s=1.5)]
    return RunResult("branch-outage", 7, steps, compute_metrics(records))


def test_metrics_measure_detection_appliance_and_recovery_from_the_cut_and_restore():
    m = compute_metrics(outage_log().records)
    assert m["detection_s"] == 32.0  # carol left the cloud first
    assert m["appliance_mode_s"] == 40.0  # dave was the last to reach the SBA
    assert m["recovery_s"] == 25.25  # carol was the last back online after the restore
    assert m["clients_in_appliance_mode"] == 2
    assert m["gateway_demoted_s"] == 300.0


def test_metrics_are_none_when_nothing_happened():
    m = compute_metrics([{"t": 1.0, "event": "client.state", "user": "a", "state": "online"}])
    assert m["detection_s"] is None and m["appliance_mode_s"] is None and m["recovery_s"] is None


def test_recovery_is_none_while_a_client_is_still_on_the_sba():
    records = [r for r in outage_log().records if not (r["event"] == "client.state" and r["t"] == 425.25)]
    assert compute_metrics(records)["recovery_s"] is None


def test_result_json_has_exactly_the_documented_shape(tmp_path):
    log = outage_log()
    paths = write_outputs(tmp_path, result_for(log.records, failed=True), log.records)
    data = json.loads(paths["result.json"].read_text())
    assert list(data) == ["scenario", "seed", "passed", "steps", "metrics", "addresses", "calls"]
    assert data["passed"] is False and data["seed"] == 7
    assert [list(s) for s in data["steps"]] == [["name", "status", "t_virtual", "detail"]] * 2
    assert data["steps"][1]["status"] == "failed"
    assert {"detection_s", "appliance_mode_s", "recovery_s"} <= set(data["metrics"])


def test_junit_has_one_testcase_per_step_and_failures_carry_the_detail(tmp_path):
    log = outage_log()
    paths = write_outputs(tmp_path, result_for(log.records, failed=True), log.records)
    root = ET.parse(paths["junit.xml"]).getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == 2
    failure = cases[1].find("failure")
    assert failure is not None and "expected appliance, got offline" in failure.text
    assert "scenarios/s.yaml:12:7" in failure.text
    assert [(c.get("file"), c.get("line"), c.get("time")) for c in cases] == [
        ("scenarios/s.yaml", "10", "0.250"), ("scenarios/s.yaml", "12", "1.500")]
    assert cases[0].find("failure") is None


def test_events_jsonl_is_identical_for_identical_streams(tmp_path):
    a, b = outage_log(), outage_log()
    write_outputs(tmp_path / "a", result_for(a.records), a.records)
    write_outputs(tmp_path / "b", result_for(b.records), b.records)
    for name in ("events.jsonl", "result.json", "junit.xml", "report.html", "capture.pcap"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    first = json.loads((tmp_path / "a" / "events.jsonl").read_text().splitlines()[0])
    assert first["t"] == 1.0 and first["event"] == "client.state"


def test_pcap_has_one_packet_per_message_on_the_real_addresses_and_ports(tmp_path):
    log = outage_log()
    paths = write_outputs(tmp_path, result_for(log.records), log.records)
    with open(paths["capture.pcap"], "rb") as f:
        packets = [(ts, dpkt.ethernet.Ethernet(buf).data) for ts, buf in dpkt.pcap.Reader(f)]
    payloads = [(ts, ip) for ts, ip in packets if len(ip.data.data)]
    # c1 INVITE + 200 (each logged twice: written once), OPTIONS over UDP, the lost c2 INVITE
    assert len(payloads) == 4
    ts, ip = payloads[0]
    assert ts == 5.0 and isinstance(ip.data, dpkt.tcp.TCP)
    assert (dpkt.utils.inet_to_str(ip.src), ip.data.sport, dpkt.utils.inet_to_str(ip.dst), ip.data.dport) == \
        ("10.20.0.10", 40001, "52.114.0.1", 5061)
    request = dpkt.sip.Request(ip.data.data)
    assert request.method == "INVITE" and request.headers["call-id"] == "c1"
    reply = dpkt.sip.Response(payloads[1][1].data.data)
    assert reply.status == "200"
    # the 200 continues the TCP stream: its ack is the INVITE's seq + length
    assert payloads[1][1].data.ack == ip.data.seq + len(ip.data.data)
    udp = payloads[2][1]
    assert isinstance(udp.data, dpkt.udp.UDP) and udp.data.dport == 5060
    assert dpkt.sip.Request(udp.data.data).method == "OPTIONS"


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_dissects_the_capture_as_sip(tmp_path):
    log = outage_log()
    paths = write_outputs(tmp_path, result_for(log.records), log.records)
    out = subprocess.run(["tshark", "-r", str(paths["capture.pcap"]), *TSHARK_DECODE_AS, "-Y", "sip",
                          "-T", "fields", "-e", "sip.Method", "-e", "sip.Status-Code", "-e", "sip.Call-ID"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    assert ["INVITE", "", "c1"] in rows and ["", "200", "c1"] in rows and ["OPTIONS", "", "o1"] in rows


def test_timeline_reads_as_the_story_and_leaves_sip_noise_out():
    lines = timeline(outage_log().records)
    texts = [ln.text for ln in lines]
    assert "link wan-seattle down (3 connections reset)" in texts
    assert "carol@contoso.com appliance at sba1.contoso.com" in texts
    assert not any("OPTIONS" in t for t in texts)
    assert format_time(425.25) == "0:07:05.250" and format_time(7 * 86400) == "168:00:00.000"


def test_html_report_is_self_contained_with_chart_ladders_and_message_text():
    log = outage_log()
    page = render_html(result_for(log.records, failed=True), log.records)
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    assert "<script src" not in page and "<link" not in page
    assert 'aria-label="client registration state and gateway health over time"' in page
    assert page.count('aria-label="SIP ladder') == 2  # c1 and c2 carry INVITEs, the OPTIONS does not
    assert "(lost)" in page  # c2's INVITE never arrived
    assert "Call-ID: c1" in page  # the full message text, shown on click
    assert "wan-seattle down" in page and "FAILED" in page


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_a_headless_browser(tmp_path):
    log = outage_log()
    paths = write_outputs(tmp_path, result_for(log.records), log.records)
    shot = tmp_path / "report.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,2000"]
    subprocess.run([_chromium(), *flags, f"--screenshot={shot}", paths["report.html"].as_uri()],
                   capture_output=True, timeout=120, check=True)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a blank page is a few kB
    dom = subprocess.run([_chromium(), *flags, "--dump-dom", paths["report.html"].as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert dom.count("<svg") == 3 and "carol@contoso.com" in dom


def test_a_new_connection_on_the_same_ports_starts_a_new_tcp_stream(tmp_path):
    from simulator.report.pcap import write_pcap

    from .synthetic import invite

    def sent(t, conn):
        return {"t": t, "event": "sip.sent", "node": "a", "transport": "tls", "src": "10.0.0.1:49152",
                "dst": "10.0.0.2:5061", "conn": conn, "call_id": "c", "cseq": "1 INVITE",
                "summary": "INVITE", "message": invite(f"c{t}")}

    path = tmp_path / "c.pcap"
    with open(path, "wb") as f:
        assert write_pcap([sent(1, "k1"), sent(2, "k1"), sent(3, "k2")], f) == 3
    with open(path, "rb") as f:
        tcp = [dpkt.ethernet.Ethernet(buf).data.data for _, buf in dpkt.pcap.Reader(f)]
    syns = [i for i, seg in enumerate(tcp) if seg.flags == dpkt.tcp.TH_SYN]
    assert len(syns) == 2 and len(tcp) == 3 + 2 + 3 + 1  # handshake, 2 segments; handshake, 1 segment
    assert tcp[-1].seq == 1  # the new stream starts again


def test_the_legs_of_one_call_through_b2buas_share_one_ladder():
    from .synthetic import invite, response

    def ev(t, event, node, src, dst, cid, msg, summary):
        return {"t": t, "event": event, "node": node, "transport": "tls", "src": src, "dst": dst, "conn": "k",
                "call_id": cid, "cseq": "1 INVITE", "summary": summary, "message": msg}

    carol, sba, sbc, pstn = "10.20.1.21:5", "10.20.0.12:5061", "10.20.0.11:5061", "198.51.100.20:5060"
    records = [
        ev(1.0, "sip.sent", "carol", carol, sba, "leg1", invite("leg1"), "INVITE sip:x"),
        ev(1.0, "sip.received", "sba1", carol, sba, "leg1", invite("leg1"), "INVITE sip:x"),
        ev(1.1, "sip.sent", "sba1", "10.20.0.12:6", sbc, "leg2", invite("leg2"), "INVITE sip:y"),
        ev(1.1, "sip.received", "sbc-sea", "10.20.0.12:6", sbc, "leg2", invite("leg2"), "INVITE sip:y"),
        ev(1.2, "sip.sent", "sbc-sea", "10.20.0.11:5060", pstn, "leg3", invite("leg3"), "INVITE sip:z"),
        ev(2.0, "sip.sent", "sba1", sba, carol, "leg1", response("leg1", 200, "OK"), "200 OK"),
        ev(9.0, "sip.sent", "carol", carol, sba, "other", invite("other"), "INVITE sip:w"),  # a later call
    ]
    page = render_html(RunResult("x", 1), records)
    assert page.count('aria-label="SIP ladder') == 2
    assert "Call-IDs: leg1, leg2, leg3" in page


@pytest.mark.parametrize(("decision", "text"), [
    ({"user": "carol@contoso.com", "dialed": "2065550100", "gateways": ["sbc-sea.contoso.com"]},
     "route carol@contoso.com dials 2065550100 → gateway sbc-sea.contoso.com"),
    ({"user": "carol@contoso.com", "dialed": "0202", "gateways": [],
      "reasons": ["dial plan ...", "+12065550202 is dave@contoso.com, cached at this SBA"]},
     "route carol@contoso.com dials 0202 → +12065550202 is dave@contoso.com, cached at this SBA (a Teams user: no gateway)"),
    ({"user": "carol@contoso.com", "dialed": "+12065550201", "gateways": [],
      "reasons": ["+12065550201 is carol@contoso.com"]},
     "route +12065550201 → carol@contoso.com (a call in to a Teams user: no gateway)"),
    ({"user": "carol@contoso.com", "dialed": "911", "gateways": [], "refusal": "no emergency route"},
     "route carol@contoso.com dials 911 → refused: no emergency route"),
    ({"user": "carol@contoso.com", "dialed": "999", "gateways": [], "reasons": ["no usage has a matching route"]},
     "route carol@contoso.com dials 999 → no route: no usage has a matching route"),
])
def test_a_routing_decision_reads_as_what_happened(decision, text):
    line = timeline([{"t": 1.0, "event": "route.decision", "node": "sba1", **decision}])[0]
    assert line.text == text


def test_the_chart_has_gateway_lanes_link_markers_and_round_ticks():
    log = outage_log()
    page = render_html(result_for(log.records), log.records)
    assert "gateway health, as the cloud sees it" in page and "sbc-sea.contoso.com: demoted from 0:06:40.000" in page
    assert ">wan-seattle down</text>" in page and ">wan-seattle up</text>" in page
    ticks = re.findall(r'text-anchor="middle" fill="#666">([0-9:]+)</text>', page)
    assert ticks == ["0:00", "1:00", "2:00", "3:00", "4:00", "5:00", "6:00", "7:00"]


def test_a_failed_step_is_a_highlighted_row():
    log = outage_log()
    page = render_html(result_for(log.records, failed=True), log.records)
    assert page.count('<tr class="row-failed">') == 1 and page.count('<tr class="row-passed">') == 1


def test_a_ladder_is_titled_with_its_parties_and_step():
    def sent(t, cid):
        return {"t": t, "event": "sip.sent", "node": "sbc-sea", "transport": "tls", "src": "10.20.0.10:5",
                "dst": "52.114.0.1:5061", "conn": "k", "call_id": cid, "cseq": "1 INVITE",
                "summary": "INVITE sip:+14255550100@x", "message": invite(cid)}

    records = [{"t": 0.5, "event": "step.started", "step": "a call to HQ", "kind": "call"}, sent(1.0, "c1")]
    page = render_html(RunResult("x", 1), records)
    assert "<h3>Call +12065550201 → +14255550100, step “a call to HQ”</h3>" in page


def test_the_registration_failover_has_its_ladder_with_the_probes_that_could_not_be_sent():
    def state(t, value, registrar):
        return {"t": t, "event": "client.state", "node": "carol", "user": "carol@contoso.com", "state": value,
                "registrar": registrar}

    register = ("REGISTER sip:contoso.com SIP/2.0\r\nCall-ID: r1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n")
    records = [
        state(1.0, "online", "sip.pstnhub.microsoft.com"),
        {"t": 120.0, "event": "sip.transport_error", "node": "carol", "reason": "connect.refused", "detail": "link down",
         "dst": "sip.pstnhub.microsoft.com:443", "transport": "tls", "call_id": "o1", "cseq": "1 OPTIONS"},
        state(130.0, "offline", None),
        {"t": 130.0, "event": "sip.sent", "node": "carol", "transport": "tls", "src": "10.20.1.21:5",
         "dst": "10.20.0.12:5061", "conn": "k", "call_id": "r1", "cseq": "1 REGISTER",
         "summary": "REGISTER sip:contoso.com", "message": register},
        state(130.0, "appliance", "sba1.contoso.com"),
    ]
    addresses = {"sip": {"host": "sip.pstnhub.microsoft.com", "address": "52.112.1.1"},
                 "sba1": {"host": "sba1.contoso.com", "address": "10.20.0.12"}}
    page = render_html(RunResult("x", 1, addresses=addresses), records)
    assert "<h3>carol@contoso.com leaves the cloud and registers at sba1.contoso.com</h3>" in page
    assert "OPTIONS ✕ connect.refused" in page
    assert '>sip</text>' in page and '>sba1</text>' in page  # columns named by node, from the address map
