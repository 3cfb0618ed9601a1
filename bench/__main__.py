"""`python -m bench [NAME ...]`: run every benchmark module (or the named ones) and print one report. The full run
writes bench/REPORT.md anew (keeping the sections of soak and load); a run by name replaces the named sections only,
each marked as run alone, with when and the load average it started at."""

from __future__ import annotations

import importlib
import os
import pkgutil
import platform
import sys
import time
from pathlib import Path

from bench import _report

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


def _separate_sections() -> list[tuple[str, str]]:
    """The sections the separate runs wrote into the report (name, section), kept when the whole set rewrites it."""
    text = _report.REPORT.read_text() if _report.REPORT.exists() else ""
    return [(name, found) for name in SEPARATE if (found := _report.find(text, name))]


def main(argv: list[str]) -> int:
    available = _modules()
    chosen = argv or available
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    load_average = os.getloadavg()[0]
    started_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        _report.TITLE,
        "",
        f"Run {started_at} with Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} cores, "
        f"load average {load_average:.1f} at the start. Targets: docs/targets.md; "
        "every ratio is taken within this run.",
    ]
    print("\n".join(lines), flush=True)
    # A run by name says so at the top of each section it replaces: the rest of the report is another run's.
    alone = f"run alone (`python -m bench {' '.join(argv)}`) {started_at}, load average {load_average:.1f} at the start"
    sections: list[tuple[str, str]] = []
    for name in chosen:
        started = time.perf_counter()
        report = importlib.import_module(f"bench.{name}").run()
        body = f"{alone}\n{report}" if argv else report
        section = _report.section(name, body, heading=f"{name} ({time.perf_counter() - started:.1f} s)")
        print("\n" + section, flush=True)
        sections.append((name, section))
    if argv:
        for name, section in sections:
            _report.write_section(name, section)
        print(f"\nsections {', '.join(argv)} replaced in {_report.REPORT}")
    else:
        # The whole set makes the report kept in the repository.
        text = "\n".join(lines) + "\n"
        for name, section in [*sections, *_separate_sections()]:
            text = _report.replace(text, name, section)
        _report.REPORT.write_text(text)
        print(f"\nwritten to {_report.REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
