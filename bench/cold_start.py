"""Cold start: importing `main` and looking one function up, against importing only the SDKs it needs.

Every measurement runs in a fresh interpreter, timed inside it (interpreter start-up excluded), code and
baseline interleaved so a noisy machine affects both alike. The SDKs our adapters import lazily on first use
are not part of the code's figure: that is the point of importing them lazily.
The code is imported from a copy compiled to bytecode, as it is deployed: the Functions Framework buildpack runs
`python3 -m compileall -f -q .` over the source when it builds a function, and pip compiles the SDKs when it
installs them. Imported from the working tree instead (where PYTHONDONTWRITEBYTECODE may keep any .pyc from being
written), every cold start would also compile our modules, a cost no deployed instance pays.
Target (docs/targets.md): cold import of `main` for any function at most 1.1 times its bare SDK set.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from functions.manifest import FUNCTIONS, Trigger

ROOT = Path(__file__).resolve().parents[1]
RUNS = 5  # three let one of ~70 functions land over 1.1x by chance in most runs
TARGET_RATIO = 1.1

_HTTP = ("functions_framework", "flask", "pydantic", "pg8000", "firebase_admin.auth")
_EVENT = ("functions_framework", "pydantic", "pg8000", "google.cloud.firestore", "google.pubsub_v1")
# What a function of each trigger cannot do without: the framework, its request parsing, PostgreSQL, and the
# client of whatever it talks to (Firebase tokens for app-facing calls, Firestore/Pub/Sub for projections,
# Cloud Tasks for handlers that schedule the next step).
SDKS: dict[Trigger, tuple[str, ...]] = {
    "http": _HTTP,
    "admin": _HTTP,
    # Xendit proves itself with a shared callback token, not a Firebase token.
    "webhook": ("functions_framework", "flask", "pydantic", "pg8000"),
    "pubsub": _EVENT,
    "task": (*_EVENT, "google.cloud.tasks_v2"),
}

_PROBE = """
import json, time
started = time.perf_counter()
{body}
elapsed = time.perf_counter() - started
rss_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS:"))
print(json.dumps({{"ms": elapsed * 1000, "rss_mib": rss_kib / 1024}}))
"""


@dataclass(frozen=True)
class Sample:
    ms: float
    rss_mib: float


@dataclass(frozen=True)
class Row:
    name: str
    trigger: str
    code: Sample
    sdks: Sample

    @property
    def ratio(self) -> float:
        return self.code.ms / self.sdks.ms


def run_probe(code: str, source: Path) -> dict[str, Any]:
    """Run `code` in a fresh interpreter in `source` (the deployed copy); the JSON its last line prints."""
    completed = subprocess.run([sys.executable, "-c", code], cwd=source, capture_output=True, text=True, check=True)
    figures: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return figures


def _probe(body: str, source: Path) -> Sample:
    figures = run_probe(_PROBE.format(body=body), source)
    return Sample(ms=figures["ms"], rss_mib=figures["rss_mib"])


def _median(samples: list[Sample]) -> Sample:
    return Sample(ms=statistics.median(s.ms for s in samples), rss_mib=statistics.median(s.rss_mib for s in samples))


def deployed_copy() -> Path:
    """The code as a function is built from it: main.py, functions/ and shared/ with their bytecode compiled."""
    copy = Path(tempfile.mkdtemp(prefix="halo-cold-start-"))
    shutil.copy2(ROOT / "main.py", copy / "main.py")
    for package in ("functions", "shared"):
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "compileall", "-f", "-q", str(copy)], check=True)
    return copy


def measure(name: str, trigger: Trigger, source: Path, runs: int = RUNS) -> Row:
    code_body = f"import main\ngetattr(main, {name!r})"
    sdk_body = "\n".join(f"import {module}" for module in SDKS[trigger])
    code, sdks = [], []
    for _ in range(runs):
        code.append(_probe(code_body, source))
        sdks.append(_probe(sdk_body, source))
    return Row(name=name, trigger=trigger, code=_median(code), sdks=_median(sdks))


def run() -> str:
    source = deployed_copy()
    try:
        rows = [measure(spec.name, spec.trigger, source) for spec in FUNCTIONS]
    finally:
        shutil.rmtree(source, ignore_errors=True)
    header = (
        f"{'function':<24} {'trigger':<8} {'main ms':>8} {'SDKs ms':>8} {'ratio':>6} {'target':>7}  "
        f"{'main RSS':>9} {'SDKs RSS':>9}"
    )
    lines = [
        f"median of {RUNS} fresh interpreters each; ratio = main / SDKs; RSS after the import; the code imported "
        "from a copy compiled to bytecode, as the Functions Framework buildpack deploys it",
        "",
        header,
        "-" * len(header),
    ]
    for row in rows:
        verdict = "ok" if row.ratio <= TARGET_RATIO else "OVER"
        lines.append(
            f"{row.name:<24} {row.trigger:<8} {row.code.ms:>8.1f} {row.sdks.ms:>8.1f} {row.ratio:>5.2f}x "
            f"{'≤' + str(TARGET_RATIO) + 'x':>6} {verdict:<4} {row.code.rss_mib:>5.1f} MiB {row.sdks.rss_mib:>5.1f} MiB"
        )
    lines.append("")
    lines.append("SDK sets per trigger:")
    lines.extend(f"  {trigger:<8} {', '.join(modules)}" for trigger, modules in SDKS.items())
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
