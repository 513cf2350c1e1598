"""`drlab lab up --processes`: the contoso lab on the real network, every node in a process of its
own, driven through the control API: a branch outage by hand, a call through the SBA, the stop."""

from __future__ import annotations

import os

import pytest

from tests.control.helpers import (
    PROCESSES_WAIT_S,
    ProcessLabThread,
    wait_for,
    wait_for_call_setup,
    wait_for_clients,
)

pytestmark = [pytest.mark.real, pytest.mark.slow]

BRANCH = {"carol@contoso.com", "dave@contoso.com"}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def by(items: list[dict], key: str) -> dict[str, dict]:
    return {item[key]: item for item in items}


def test_a_branch_outage_by_hand_with_every_node_in_its_own_process(tmp_path_factory: pytest.TempPathFactory) -> None:
    certs = tmp_path_factory.getbasetemp() / "lab-certs"
    with ProcessLabThread(certs) as live:
        lab = live.client
        pids = live.lab.pids()
        # the Teams cloud's three proxies share one process; every other node has its own
        assert len(pids) == len(live.lab.node_specs) - 2
        assert len(set(pids.values())) == len(pids) and os.getpid() not in pids.values()
        assert all(alive(pid) for pid in pids.values())
        assert lab.state()["time"]["pace"] == 10

        cut = lab.link("wan-seattle", state="down")
        registrars = wait_for_clients(lab, cut["event_id"], BRANCH, "appliance", wait_s=PROCESSES_WAIT_S)
        assert set(registrars.values()) == {"sba1.contoso.com"}
        clients = by(lab.state()["clients"], "user")
        assert {user: (clients[user]["state"], clients[user]["registrar"]) for user in BRANCH} == {
            user: ("appliance", "sba1.contoso.com") for user in BRANCH}

        call = wait_for_call_setup(lab, lab.call("carol@contoso.com", "2065550100"), "carol", wait_s=PROCESSES_WAIT_S)
        assert (call["state"], call["status"], call["via_sba"]) == ("answered", 200, True)
        assert call["path"] == ["carol", "sba1", "sbc-sea", "pstn-sea"]
        hangup = lab.hangup(call["id"])
        wait_for(lab, hangup["event_id"], lambda r: r["event"] == "control.done" and r.get("call") == call["id"],
                 wait_s=PROCESSES_WAIT_S)

        restore = lab.link("wan-seattle", state="up")
        wait_for_clients(lab, restore["event_id"], BRANCH, "online", wait_s=PROCESSES_WAIT_S)
        clients = by(lab.state()["clients"], "user")
        assert {clients[user]["state"] for user in BRANCH} == {"online"}
        left_up = wait_for_call_setup(lab, lab.call("dave@contoso.com", "2065550100"), "dave", wait_s=PROCESSES_WAIT_S)
        assert left_up["state"] == "answered"
    # the stop hangs up what is still up (BYE, in dave's process) before the processes end
    assert not [name for name, pid in pids.items() if alive(pid)], "node processes outlived the lab"
    records = live.live.records
    assert records[-1]["event"] == "lab.stopped"
    assert [r["t"] for r in records] == sorted(r["t"] for r in records)
    assert {r["node"] for r in records if r["event"] == "client.state"} >= {"carol", "dave"}
    ended = [r for r in records if r["event"] == "call.ended" and r.get("call_id") == left_up["call_id"]]
    assert ("dave", "hung up") in {(r["node"], r.get("reason")) for r in ended}
    assert any(r["event"] == "sip.sent" and r["node"] == "dave" and r.get("summary", "").startswith("BYE")
               for r in records)
