"""Child program of bench/parse.py's instruction counts: run under valgrind's callgrind.

`python -m bench._instructions READER CALLS` imports everything, warms every reader up, then
calls READER (one of READERS, or "none") CALLS times. Two such runs, one with CALLS = 0, differ
by exactly CALLS calls of READER: the start-up, imports and warm-up cancel out.
"""

from __future__ import annotations

import sys
from functools import partial

from bench.parse import INVITE, _other_parsers, _structured
from simulator.sip.parser import parse_message_python

# Named as the figures they give (`<name>_instructions`); the same calls the rates time.
READERS = {
    "invite_parse": _structured(INVITE),
    "invite_parse_python": _structured(INVITE, parse_message_python),
    "dpkt_invite_parse": partial(_other_parsers()["dpkt"][0], INVITE),
}

if __name__ == "__main__":
    reader, calls = sys.argv[1], int(sys.argv[2])
    for warm in READERS.values():
        for _ in range(50):
            warm()
    call = READERS.get(reader)
    for _ in range(calls):
        call()
