"""The contoso lab live on the sim network (at TEST_PACE), driven through its control API on real
loopback sockets: a branch outage by hand, calls, the clock, bad requests, a second lab."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from simulator.control.client import ControlClient, ControlRefused
from tests.control.helpers import (
    TEST_PACE,
    LabThread,
    module_fixtures,
    wait_for,
    wait_for_call_setup,
    wait_for_clients,
)

pytestmark = pytest.mark.live

certs, live = module_fixtures()


def by(items: list[dict], key: str) -> dict[str, dict]:
    return {item[key]: item for item in items}


def test_the_state_shows_every_node_link_client_gateway_and_the_clock(live: LabThread) -> None:
    state = live.client.state()
    assert set(state) == {"nodes", "links", "clients", "gateways", "calls", "time"}
    sip = by(state["nodes"], "name")["sip"]
    assert sip == {"name": "sip", "role": "teams_proxy", "host": "sip.pstnhub.microsoft.com",
                   "address": "52.112.1.1", "state": "running"}
    assert by(state["links"], "name")["wan-seattle"] == {"name": "wan-seattle", "state": "up"}
    assert by(state["clients"], "user")["carol@contoso.com"] == {
        "user": "carol@contoso.com", "state": "online", "registrar": "sip.pstnhub.microsoft.com"}
    sbc_sea = by(state["gateways"], "fqdn")["sbc-sea.contoso.com"]
    assert sbc_sea["health"] == "active" and sbc_sea["reason"].startswith("OPTIONS received")
    assert state["time"]["pace"] == TEST_PACE and state["time"]["paused"] is False


def test_the_address_map_names_each_listener_by_transport(live: LabThread) -> None:
    addresses = by(live.client.addresses(), "node")
    assert addresses["sip"]["listening"] == [{"transport": "tls", "address": "52.112.1.1", "port": 5061},
                                             {"transport": "tls", "address": "52.112.1.1", "port": 443}]
    assert {x["transport"] for x in addresses["sbc-sea"]["listening"]} == {"tls", "udp"}
    assert addresses["carol"] == {"node": "carol", "host": "carol-pc.contoso.com", "address": "10.20.1.21",
                                  "listening": []}


def test_a_wan_cut_by_hand_sends_the_branch_to_the_sba_and_back(live: LabThread) -> None:
    lab = live.client
    cut = lab.link("wan-seattle", state="down")
    assert cut["state"] == "down"
    registrars = wait_for_clients(lab, cut["event_id"], {"carol@contoso.com", "dave@contoso.com"}, "appliance")
    assert set(registrars.values()) == {"sba1.contoso.com"}
    clients = by(lab.state()["clients"], "user")
    assert clients["carol@contoso.com"] == {"user": "carol@contoso.com", "state": "appliance",
                                            "registrar": "sba1.contoso.com"}
    assert clients["alice@contoso.com"]["state"] == "online"

    call = lab.call("carol@contoso.com", "2065550100")
    answered = wait_for_call_setup(lab, call, "carol")
    assert (answered["state"], answered["status"]) == ("answered", 200), str(answered)
    assert answered["path"] == ["carol", "sba1", "sbc-sea", "pstn-sea"]
    assert by(lab.state()["calls"], "id")[call["id"]] == {
        "id": call["id"], "from": "carol@contoso.com", "to": "2065550100", "state": "answered",
        "path": ["carol", "sba1", "sbc-sea", "pstn-sea"]}
    hangup = lab.hangup(call["id"])
    wait_for(lab, hangup["event_id"], lambda r: r["event"] == "call.ended" and r.get("node") == "carol")
    assert lab.request("GET", f"/api/calls/{call['id']}")["state"] == "ended"

    restore = lab.link("wan-seattle", state="up")
    wait_for_clients(lab, restore["event_id"], {"carol@contoso.com", "dave@contoso.com"}, "online")
    wait_for(lab, restore["event_id"],  # the branch SBC reaches the cloud again (and stops sending calls to the SBA)
             lambda r: r["event"] == "sbc.proxy" and r.get("node") == "sbc-sea" and r.get("state") == "up")
    clients = by(lab.state()["clients"], "user")
    assert clients["carol@contoso.com"]["state"] == clients["dave@contoso.com"]["state"] == "online"
    assert by(lab.state()["links"], "name")["wan-seattle"]["state"] == "up"


def test_a_carrier_call_comes_in_through_the_branch_sbc(live: LabThread) -> None:
    lab = live.client
    call = lab.call("4255550199", "2065550202", pstn="pstn-sea")  # dave's number
    answered = wait_for_call_setup(lab, call, "pstn-sea")
    assert answered["state"] == "answered", str(answered)
    # then the cloud: the proxy that holds dave's registration sends the INVITE on to him
    assert answered["path"][:3] == ["pstn-sea", "sbc-sea", "sip"]
    hangup = lab.hangup(call["id"])
    wait_for(lab, hangup["event_id"], lambda r: r["event"] == "call.ended" and r.get("node") == "pstn-sea")


def test_restart_and_sync_run_on_the_lab_and_show_in_the_events(live: LabThread) -> None:
    lab = live.client
    restart = lab.restart("erin@contoso.com")
    wait_for(lab, restart["event_id"], lambda r: r["event"] == "client.restarted" and r.get("node") == "erin")
    sync = lab.sync("sba1")
    assert wait_for(lab, sync["event_id"], lambda r: r["event"] == "sba.sync" and r.get("node") == "sba1")["ok"]


def test_an_impairment_changes_the_link_and_is_logged(live: LabThread) -> None:
    lab = live.client
    answer = lab.link("trunk-hq", latency="80ms", jitter="10ms", loss="5%")
    assert (answer["latency"], answer["jitter"], answer["loss"]) == (0.08, 0.01, 0.05)
    logged = wait_for(lab, answer["event_id"], lambda r: r["event"] == "link.impaired")
    assert (logged["link"], logged["latency"]) == ("trunk-hq", 0.08)
    lab.link("trunk-hq", latency="2ms", jitter=0, loss=0)


def test_a_paused_clock_stands_still_and_steps_to_its_next_timer(live: LabThread) -> None:
    lab = live.client
    paused = lab.time(paused=True)
    try:
        assert paused["paused"] is True
        assert lab.request("GET", "/api/time")["virtual_s"] == paused["virtual_s"]
        stepped = lab.time(step=True)
        assert stepped["paused"] is True and stepped["virtual_s"] > paused["virtual_s"]
        assert lab.time(pace=50)["pace"] == 50
    finally:
        running = lab.time(paused=False, pace=TEST_PACE)
    assert running["paused"] is False
    assert wait_for(lab, running["event_id"], lambda r: r["t"] > running["virtual_s"])


def test_the_event_stream_replays_from_an_id_then_follows_live(live: LabThread) -> None:
    from_the_start = live.client.events(since=0, timeout=15)
    assert next(from_the_start) == ("record", live.lab.events.records[0])
    from_the_start.close()
    command = live.client.link("dc-asia", state="up")  # already up: recorded, nothing else happens
    kind, first = next(live.client.events(since=command["event_id"], timeout=15))
    assert (kind, first["event"], first["command"], first["link"]) == ("record", "control.command", "link", "dc-asia")


BAD_REQUESTS = [
    ("POST", "/api/links/nope", {"state": "down"}, 404, "no link 'nope'"),
    ("POST", "/api/links/wan-hq", {"state": "sideways"}, 400, "state must be one of down, up, blackhole"),
    ("POST", "/api/links/wan-hq", "{not json", 400, "the body is not JSON"),
    ("POST", "/api/links/wan-hq", [1, 2], 400, "must be a JSON object"),
    ("POST", "/api/links/wan-hq", {"colour": "red"}, 400, "unknown field(s) colour"),
    ("POST", "/api/links/wan-hq", {"latency": True}, 400, "'latency' must be a duration"),
    ("POST", "/api/links/wan-hq", {"loss": "150%"}, 400, "'loss' must be a percentage"),
    ("POST", "/api/links/wan-hq", {"state": "down", "loss": "1%"}, 400, "either a state or an impairment"),
    ("POST", "/api/links/wan-hq", {}, 400, "needs latency, jitter or loss"),
    ("POST", "/api/calls", {"from": "zed@contoso.com", "to": "2065550100"}, 404, "no client for user"),
    ("POST", "/api/calls", {"from": 5, "to": "2065550100"}, 400, "'from' must be a non-empty string"),
    ("POST", "/api/calls", {"from": "4255550199", "to": "2065550201"}, 400, "give 'pstn'"),
    ("POST", "/api/calls", {"pstn": "sbc1", "from": "1", "to": "2"}, 404, "no pstn node 'sbc1'"),
    ("DELETE", "/api/calls/c999", None, 404, "no call 'c999'"),
    ("POST", "/api/clients/zed@contoso.com/restart", None, 404, "no client for user"),
    ("POST", "/api/sba/sbc1/sync", None, 404, "no sba node 'sbc1'"),
    ("POST", "/api/time", {"pace": 0}, 400, "'pace' must be a positive number"),
    ("POST", "/api/time", {"paused": "yes"}, 400, "'paused' must be true or false"),
    ("POST", "/api/time", {}, 400, "give pace"),
    ("POST", "/api/time", {"step": True}, 409, "step needs a paused clock"),
    ("GET", "/api/events?since=abc", None, 400, "since must be a record index"),
    ("GET", "/api/nothing", None, 404, "no endpoint GET /api/nothing"),
    ("PUT", "/api/state", None, 405, "PUT is not allowed on /api/state"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "error"), BAD_REQUESTS,
                         ids=[f"{m} {p} {s}" for m, p, _, s, _ in BAD_REQUESTS])
def test_a_bad_request_gets_a_4xx_json_error_naming_the_problem(live: LabThread, method: str, path: str,
                                                                body: object, status: int, error: str) -> None:
    data = None if body is None else (body if isinstance(body, str) else json.dumps(body)).encode()
    request = urllib.request.Request(live.url + path, data=data, method=method)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == status
    assert caught.value.headers["Content-Type"].startswith("application/json")
    answer = json.loads(caught.value.read())
    assert error in answer["error"]


def test_the_client_raises_the_refusal_with_its_status(live: LabThread) -> None:
    with pytest.raises(ControlRefused) as refused:
        live.client.hangup("c999")
    assert refused.value.status == 404


def test_two_labs_run_side_by_side_each_with_its_own_state(live: LabThread, certs: Path) -> None:
    with LabThread(certs) as second:
        assert second.url != live.url
        cut = second.client.link("wan-hq", state="blackhole")
        assert cut["state"] == "blackhole"
        assert by(ControlClient(live.url).state()["links"], "name")["wan-hq"]["state"] == "up"
        assert by(second.client.state()["links"], "name")["wan-hq"]["state"] == "blackhole"
