"""The collector during a run (simulator/heap.py): the lab out of its sight, put back afterwards."""

from __future__ import annotations

import gc
import weakref

from simulator.heap import YOUNG_THRESHOLD, long_lived_heap


def test_inside_a_run_what_existed_is_frozen_and_young_collections_are_rarer():
    before = gc.get_threshold()
    with long_lived_heap():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (max(before[0], YOUNG_THRESHOLD), *before[1:])
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_only_the_outermost_run_puts_the_collector_back():
    before = gc.get_threshold()
    with long_lived_heap():
        with long_lived_heap():
            pass
        assert gc.get_threshold() != before and gc.get_freeze_count() > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_garbage_frozen_with_the_lab_is_collected_once_the_run_is_over():
    class Node:
        pass

    cycle = Node()
    cycle.self = cycle  # type: ignore[attr-defined]
    alive = weakref.ref(cycle)
    with long_lived_heap():
        del cycle
        gc.collect()
        assert alive() is not None  # frozen: no collection during the run walks it
    gc.collect()
    assert alive() is None
