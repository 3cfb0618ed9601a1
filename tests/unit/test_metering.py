"""The cost model's counters (shared/metering.py): off unless HALO_METER_DIR is set, summed across processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shared import metering

ROOT = Path(__file__).resolve().parents[2]


def test_counting_is_off_without_a_folder(tmp_path: Path) -> None:
    assert not metering.enabled()
    metering.count("firestore.write", 3)

    assert metering.totals(tmp_path) == {}


def test_each_process_counts_into_its_own_file_and_the_totals_sum_them(tmp_path: Path) -> None:
    script = (
        "from shared import metering\n"
        "metering.count('firestore.write', 2)\n"
        "metering.count('cpu_ms chat_send', 1.5)\n"
        "metering.count('firestore.write', 0)\n"
    )
    for _ in range(2):
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env={"HALO_METER_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)},
            check=True,
        )

    assert len(list(tmp_path.glob("*.meter"))) == 2
    assert metering.totals(tmp_path) == {"firestore.write": 4.0, "cpu_ms chat_send": 3.0}
