"""`make demo` prints a real, deterministic call ladder and exits 0."""

import io

from simulator import demo


def run_demo():
    out = io.StringIO()
    status = demo.run(out)
    return status, out.getvalue()


def test_demo_prints_the_whole_call_and_succeeds():
    status, text = run_demo()
    assert status == 0
    first_lines = [line.split("bob    ", 1)[1].split("  [")[0].split(" sip:")[0]
                   for line in text.splitlines() if "bob    " in line]
    assert first_lines == [
        "INVITE", "SIP/2.0 100 Trying", "SIP/2.0 180 Ringing", "SIP/2.0 200 OK", "ACK",
        "INVITE", "SIP/2.0 100 Trying", "SIP/2.0 200 OK", "ACK",
        "BYE", "SIP/2.0 200 OK",
    ]
    assert "sendonly]" in text and "recvonly]" in text
    assert "call ended, dialog Terminated" in text


def test_demo_is_the_same_every_run():
    assert run_demo() == run_demo()
