"""What the live view reads from a running lab: the page and its two static files, the topology
(sites by kind, links with their live state and impairment, nodes with their site), and the
Call-IDs of every leg of a call placed through the API."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest

from tests.control.helpers import LabThread, module_fixtures, wait_for_call_setup

certs, live = module_fixtures()
SVG_NAMESPACE = "http://www.w3.org/2000/svg"


def fetch(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


@pytest.mark.parametrize(("path", "content_type", "contains"), [
    ("/", "text/html", '<script src="/static/live.js">'),
    ("/static/live.js", "text/javascript", 'new EventSource("/api/events?since=0")'),
    ("/static/live.css", "text/css", "#topology"),
])
def test_the_page_and_its_files_are_served_from_the_lab(live: LabThread, path: str, content_type: str,
                                                        contains: str) -> None:
    status, served_as, body = fetch(live.url + path)
    assert (status, served_as.split(";")[0]) == (200, content_type)
    assert contains in body
    # nothing fetched from outside the lab: the only address in it is the SVG namespace's name
    assert set(re.findall(r"https?://[^\s\"')]+", body)) <= {SVG_NAMESPACE}


@pytest.mark.parametrize("path", ["/static/../api.py", "/static/other.js", "/static/"])
def test_only_the_pages_own_files_are_served(live: LabThread, path: str) -> None:
    assert fetch(live.url + path)[0] == 404


def test_the_topology_names_sites_by_kind_and_nodes_by_site(live: LabThread) -> None:
    topology = live.client.request("GET", "/api/topology")
    assert topology["lab"] == "contoso"
    kinds = {site["name"]: site["kind"] for site in topology["sites"]}
    assert kinds == {"internet": "transit", "cloud-noam": "cloud", "cloud-emea": "cloud", "cloud-asia": "cloud",
                     "hq": "branch", "seattle": "branch", "pstn-hq": "carrier", "pstn-sea": "carrier"}
    seattle = next(site for site in topology["sites"] if site["name"] == "seattle")
    assert seattle["nodes"] == ["sbc-sea", "sba1", "carol", "dave", "erin"]
    nodes = {node["name"]: node for node in topology["nodes"]}
    assert nodes["sbc-sea"] == {"name": "sbc-sea", "role": "sbc", "host": "sbc-sea.contoso.com", "site": "seattle",
                                "user": None, "carrier": "pstn-sea", "sba": "sba1"}
    assert nodes["carol"]["user"] == "carol@contoso.com"


def test_a_link_shows_its_state_and_whether_it_is_impaired(live: LabThread) -> None:
    def link(name: str) -> dict:
        return next(x for x in live.client.request("GET", "/api/topology")["links"] if x["name"] == name)

    assert link("trunk-hq") == {"name": "trunk-hq", "a": "hq", "b": "pstn-hq", "state": "up",
                                "latency": 0.002, "jitter": 0.0, "loss": 0.0, "impaired": False}
    live.client.link("trunk-hq", latency="80ms")
    assert link("trunk-hq")["impaired"] is True and link("trunk-hq")["latency"] == 0.08
    live.client.link("trunk-hq", latency="2ms")
    assert link("trunk-hq")["impaired"] is False


def test_a_calls_legs_are_every_call_id_its_b2buas_started(live: LabThread) -> None:
    call = live.client.call("carol@contoso.com", "2065550100")
    wait_for_call_setup(live.client, call, "carol")
    legs = live.client.request("GET", f"/api/calls/{call['id']}/legs")
    assert legs["id"] == call["id"]
    assert len(legs["call_ids"]) == 3  # carol -> sip -> sbc-sea -> pstn-sea: three Call-IDs
    live.client.hangup(call["id"])
