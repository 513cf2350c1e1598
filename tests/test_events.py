import io
import json

from simulator.events import EventLog


def test_structlog_logger_writes_named_events_with_fields_and_clock_time():
    now = [12.5]
    log = EventLog(clock=lambda: now[0])
    sbc = log.logger(node="sbc1")
    sbc.info("gateway.demoted", gateway="sbc1.contoso.com", silent_s=300)
    now[0] = 13.0
    sbc.warning("link.down", link="wan-seattle")
    assert log.records == [
        {"t": 12.5, "event": "gateway.demoted", "node": "sbc1", "gateway": "sbc1.contoso.com", "silent_s": 300},
        {"t": 13.0, "event": "link.down", "node": "sbc1", "link": "wan-seattle"},
    ]
    assert [r["event"] for r in log.select("link.", node="sbc1")] == ["link.down"]


def test_jsonl_output_is_one_event_per_line():
    log = EventLog()
    log.emit("a.b", x=1)
    log.emit("c.d", y="z")
    out = io.StringIO()
    log.write_jsonl(out)
    lines = out.getvalue().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["a.b", "c.d"]
