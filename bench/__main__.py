"""`python -m bench [NAME ...]`: run every benchmark module (or the named ones) and print one report; the full run
also writes bench/REPORT.md."""

from __future__ import annotations

import importlib
import os
import pkgutil
import platform
import re
import sys
import time
from pathlib import Path

REPORT = Path(__file__).resolve().parent / "REPORT.md"


# Run on their own (`make soak`), with a section of the report they rewrite themselves.
SEPARATE = ("soak", "load")
# Modules of bench/ that are not benchmarks: the cost model's price table.
NOT_BENCHMARKS = ("prices",)


def _modules() -> list[str]:
    here = str(Path(__file__).resolve().parent)
    names = (info.name for info in pkgutil.iter_modules([here]))
    return sorted(
        name for name in names if not name.startswith("_") and name not in SEPARATE and name not in NOT_BENCHMARKS
    )


def _separate_sections() -> list[str]:
    """The sections the separate runs wrote into the report, kept when the whole set rewrites it."""
    if not REPORT.exists():
        return []
    text = REPORT.read_text()
    return [
        match.group(0).rstrip("\n")
        for name in SEPARATE
        if (match := re.search(rf"^## {name}\n.*?(?=^## |\Z)", text, re.S | re.M))
    ]


def main(argv: list[str]) -> int:
    available = _modules()
    chosen = argv or available
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    lines = [
        "# Halo Bestie benchmarks",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with Python {platform.python_version()} on "
        f"{platform.platform()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start. "
        "Targets: docs/targets.md; every ratio is taken within this run.",
    ]
    print("\n".join(lines), flush=True)
    for name in chosen:
        started = time.perf_counter()
        report = importlib.import_module(f"bench.{name}").run()
        section = f"\n## {name} ({time.perf_counter() - started:.1f} s)\n\n```\n{report}\n```"
        print(section, flush=True)
        lines.append(section)
    if not argv:
        # The whole set makes the report kept in the repository.
        REPORT.write_text("\n".join([*lines, *("\n" + section for section in _separate_sections())]) + "\n")
        print(f"\nwritten to {REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
