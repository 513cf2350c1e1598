"""The compiled SIP quick paths (`_speedups.pyx`), when `make venv` could build them.

`SPEEDUPS` is the compiled module, or None: then every caller runs its pure-Python quick path,
which gives the same results (tests/sip/test_quick_path.py checks both against the careful
parsers). A build older than its .pyx is not used: the source changed since, and `make venv`
rebuilds it. DRLAB_PURE_PYTHON=1 in the environment leaves it unused as well.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from types import ModuleType


def _load() -> ModuleType | None:
    if os.environ.get("DRLAB_PURE_PYTHON"):
        return None
    try:
        from . import _speedups
    except ImportError:
        return None
    source = Path(__file__).with_name("_speedups.pyx")
    if source.exists() and source.stat().st_mtime > Path(_speedups.__file__).stat().st_mtime:
        warnings.warn(
            "simulator/sip/_speedups is older than its .pyx: running the Python quick paths (`make venv` rebuilds it)",
            stacklevel=2,
        )
        return None
    return _speedups


SPEEDUPS = _load()
