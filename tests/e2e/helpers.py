"""The Contoso lab with every real role on the sim network, and small waits on its event log.

Every e2e test builds examples/labs/contoso.yaml with examples/contoso.yaml (plus erin if the
tenant file lacks her), starts it on the virtual clock, and asserts on events and on what the far
end (the PSTN carrier, a client) received.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from simulator.lab import Lab
from simulator.net.clock import run_sim
from simulator.tenant.changes import apply_change
from tests.support.contoso import CONTOSO_LAB, contoso

SETTLE_S = 60.0


def run_contoso(certs: Path, scenario: Callable[[Lab], Awaitable[None]], *, lab_path: Path | None = None,
                tenant: Any = None, seed: int = 1, must_settle: bool = True, **kw: Any) -> None:
    """Build the Contoso lab, start it (settled), run `scenario(lab)`, stop it — all in virtual time."""
    async def main() -> None:
        lab = Lab.load(lab_path or CONTOSO_LAB, tenant=tenant or contoso(), certs_dir=certs, seed=seed, **kw)
        waiting = await lab.start(settle_timeout_s=SETTLE_S)
        try:
            if must_settle:
                assert waiting == [], f"lab did not settle: {waiting}"
            await scenario(lab)
        finally:
            await lab.stop()
    run_sim(main)


async def wait_until(predicate: Callable[[], Any], timeout: float, step: float = 0.25) -> Any:
    """Poll `predicate` in virtual time until it is truthy (returns its value) or `timeout` passes (returns it falsy)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = predicate()
        if value or loop.time() >= end:
            return value
        await asyncio.sleep(step)


def events(lab: Lab, name: str, **match: Any) -> list[dict[str, Any]]:
    return [e for e in lab.events.records if e["event"] == name and all(e.get(k) == v for k, v in match.items())]


def received_by(lab: Lab, node: str, method: str) -> list[dict[str, Any]]:
    """`sip.received` events of `node` whose summary starts with `method`."""
    return [e for e in events(lab, "sip.received", node=node) if e["summary"].startswith(method + " ")]


def change(lab: Lab, what: str, /, **body: Any) -> str:
    """A tenant change as a scenario `change` step makes it (simulator.tenant.changes)."""

    return apply_change(lab.tenant, {what: body}, where="test")


def far_end_calls(lab: Lab) -> list[Any]:
    return [c for node in ("pstn-hq", "pstn-sea") for c in lab.node(node).received]
