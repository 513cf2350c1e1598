"""Child program of bench/scenario.py's per-call figures: PSTN calls through the Contoso lab.

`python -m bench._calls CALLS` builds and settles the Contoso lab on the sim network, then has the
Seattle carrier place CALLS calls through sbc-sea and the Teams proxy to carol, dave and erin in
turn, `RATE` new calls per virtual second, each hung up by the carrier 1 s after the answer, and
waits until every call has ended and `IDLE_S` more virtual seconds have passed (the transaction
timers of the last calls run out). It prints one JSON line: calls answered, CPU seconds of the
lab start, of each batch of `BATCH` calls, and of `IDLE_S` idle virtual seconds before the first
call and after the last one ended (an idle lab costs the same after load as before it). Under callgrind, two runs with different CALLS
differ by exactly that many calls: start-up and the idle tail cancel out.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from simulator.lab import Lab
from simulator.net.clock import run_sim

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "examples" / "labs" / "contoso.yaml"
TENANT = ROOT / "examples" / "contoso.yaml"
CERTS = ROOT / "certs" / "contoso"
RATE = 20.0  # new calls per virtual second
BATCH = 500
IDLE_S = 40.0
CALLEES = ("2065550201", "2065550202", "2065550203")  # carol, dave, erin as the carrier dials them


def place_calls(calls: int, certs: Path = CERTS) -> dict[str, object]:
    async def main() -> dict[str, object]:
        lab = Lab.load(LAB, tenant=TENANT, seed=1, certs_dir=certs)
        started = time.process_time()
        waiting = await lab.start()
        assert waiting == [], f"the Contoso lab did not settle: {waiting}"
        batches: list[float] = []
        answered = 0
        try:
            pstn = lab.node("pstn-sea")
            placed = []
            start_s = time.process_time() - started
            idle_before = await idle()
            mark = time.process_time()
            for n in range(calls):
                placed.append(pstn.start_call("4255550199", CALLEES[n % len(CALLEES)], hangup_after=1.0))
                await asyncio.sleep(1 / RATE)
                if (n + 1) % BATCH == 0:
                    now = time.process_time()
                    batches.append(round(now - mark, 3))
                    mark = now
            for call in placed:
                await call.wait_ended(timeout=120)
            answered = sum(1 for call in placed if call.answered)
            await asyncio.sleep(IDLE_S)  # the last calls' transaction timers run out
            idle_after = await idle()
        finally:
            await lab.stop()
        return {"calls": calls, "answered": answered, "start_cpu_s": round(start_s, 3), "batch_cpu_s": batches,
                "idle_cpu_s_before": idle_before, "idle_cpu_s_after": idle_after}

    async def idle() -> float:
        mark = time.process_time()
        await asyncio.sleep(IDLE_S)
        return round(time.process_time() - mark, 3)

    return run_sim(main)


if __name__ == "__main__":
    print(json.dumps(place_calls(int(sys.argv[1]))))
