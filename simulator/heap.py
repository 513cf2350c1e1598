"""The collector during a run: the lab's long-lived objects out of its sight, fewer young collections.

    with long_lived_heap():        # entered once the lab is built and started
        await runner.run()

CPython's cyclic collector walks every tracked object of a generation it collects. A started lab
is a few hundred thousand objects that live as long as the run (roles, endpoints, certificates,
connections, the tenant), and a run allocates millions of short-lived ones (messages,
transactions, timers, futures), so with the default thresholds the collector ran a full
collection every few seconds of CPU and each one walked the whole lab: CPU grew faster than the
lab (the generated lab of 10 branches spent 18 of its 41 CPU seconds there, bench/scenario.py).
`gc.freeze()` moves what exists now to the permanent generation, which no collection walks, and a
larger first threshold lets more short-lived objects die by reference count between collections.
Leaving restores both: the frozen objects go back to the oldest generation, where a later full
collection frees any garbage among them (until then it stays: a run's peak memory is a little
higher). Entries nest (a live lab in its thread, a scenario run); only the last one to leave
restores.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

#: allocations between young collections while a lab runs (CPython's default is 700)
YOUNG_THRESHOLD = 50_000

_depth = 0
_threshold_before: tuple[int, int, int] = gc.get_threshold()
_lock = threading.Lock()  # a live lab runs in a thread of its own, next to other runs


@contextlib.contextmanager
def long_lived_heap() -> Iterator[None]:
    global _depth, _threshold_before
    with _lock:
        if _depth == 0:
            _threshold_before = gc.get_threshold()
            gc.set_threshold(max(_threshold_before[0], YOUNG_THRESHOLD), *_threshold_before[1:])
        gc.freeze()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_threshold_before)
                gc.unfreeze()
