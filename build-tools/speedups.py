"""Build the optional compiled SIP quick path (simulator/sip/_speedups.pyx) in place.

`make venv` runs this. Without a C compiler (or Python headers) it says so and exits 0:
the pure-Python quick path then runs instead, with the same results, only slower.
setuptools is driven directly (not through `cythonize -i`) so that it does not read the
project's pyproject.toml, which hatchling builds.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "simulator/sip/_speedups.pyx"


def main() -> int:
    try:
        from Cython.Build import cythonize
        from setuptools import Distribution, Extension

        extension = Extension("simulator.sip._speedups", [SOURCE], extra_compile_args=["-O2"])
        dist = Distribution(
            {
                "ext_modules": cythonize([extension], language_level=3, quiet=True),
                "script_name": "build-tools/speedups.py",
                "script_args": ["--quiet", "build_ext", "--inplace", "--build-temp", "build/speedups"],
            }
        )
        dist.parse_command_line()
        dist.run_commands()
    except Exception as error:  # no Cython, CompileError, LinkError, no compiler ...
        print(f"speedups: not built ({error}); the pure-Python parser runs instead", file=sys.stderr)
        return 0
    print("speedups: built simulator/sip/_speedups (compiled SIP quick path)")
    return 0


if __name__ == "__main__":
    import os

    os.chdir(ROOT)
    sys.exit(main())
