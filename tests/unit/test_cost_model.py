"""The cost model (bench/cost.py) prices the deployment the manifest and infra describe: the warm functions are read
from functions/manifest.py and the instances each keeps from infra/variables.tf, not typed into the bench."""

from __future__ import annotations

from collections import Counter

import pytest

from bench import cost
from functions import manifest


def _session(typing: int) -> cost.Counts:
    meter = {"firestore.write": 100.0, "invocation chat_send": 60.0, "invocation chat_typing": float(typing)}
    meter |= {"cpu_ms chat_send": 1000.0}
    return cost.Counts(
        meter=meter, listener_reads=Counter({"app": 190}), pg_transactions=1, gateway_cpu_s=2.0, real_s=1.0
    )


def test_the_warm_set_is_the_manifests() -> None:
    assert cost._warm_functions(every_app_function=False) == [spec.name for spec in manifest.FUNCTIONS if spec.warm]
    everyone = cost._warm_functions(every_app_function=True)
    assert everyone == [spec.name for spec in manifest.FUNCTIONS if spec.trigger == "http"]


def test_the_warm_line_moves_with_the_manifest(monkeypatch: pytest.MonkeyPatch) -> None:
    now = cost._warm_month(cost._warm_functions(every_app_function=False))
    marked = tuple(
        spec if spec.name != "chat_typing" else manifest.FunctionSpec(spec.name, spec.module, spec.trigger, warm=True)
        for spec in manifest.FUNCTIONS
    )
    monkeypatch.setattr(manifest, "FUNCTIONS", marked)
    assert "chat_typing" in cost._warm_functions(every_app_function=False)
    assert cost._warm_month(cost._warm_functions(every_app_function=False)) > now


def test_the_report_judges_the_monthly_bills_biggest_line() -> None:
    text = cost.report(_session(180), _session(22))
    assert "biggest line of the monthly bill" in text
    assert "at 1,000/day: warm instances (idle rate)" in text
    assert f"after, only those marked warm: {sum(spec.warm for spec in manifest.FUNCTIONS)}" in text
    assert "biggest line cut by >= 1/3: ok" in text
