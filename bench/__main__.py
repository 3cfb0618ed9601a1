"""`python -m bench [NAME ...]`: run every benchmark module (or the named ones) and print one report."""

from __future__ import annotations

import importlib
import pkgutil
import platform
import sys
import time
from pathlib import Path


def _modules() -> list[str]:
    here = str(Path(__file__).resolve().parent)
    return sorted(info.name for info in pkgutil.iter_modules([here]) if not info.name.startswith("_"))


def main(argv: list[str]) -> int:
    available = _modules()
    chosen = argv or available
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    print(f"# Halo Bestie benchmarks: Python {platform.python_version()} on {platform.platform()}")
    for name in chosen:
        started = time.perf_counter()
        report = importlib.import_module(f"bench.{name}").run()
        print(f"\n## {name} ({time.perf_counter() - started:.1f} s)\n")
        print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
