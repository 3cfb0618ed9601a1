"""The collector paused through a deployed instance's cold start (shared/collector.py, main.py): paused from the
function's lookup until its first request has been answered, then what the start built frozen and collection on
again; never left off, whichever way the start goes."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.collector import StartPause

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_the_pause_lasts_until_the_first_answer_then_freezes_and_resumes() -> None:
    gc.enable()
    frozen_before = gc.get_freeze_count()
    pause = StartPause()
    calls: list[str] = []
    function = pause.until_first_answer(lambda request: calls.append(request) or "ok")
    assert not gc.isenabled()
    assert function("first") == "ok"
    assert gc.isenabled()
    assert pause.resumed
    assert gc.get_freeze_count() > frozen_before
    gc.disable()  # a later call does not touch the collector again
    assert function("second") == "ok"
    assert not gc.isenabled()
    assert calls == ["first", "second"]


def test_a_first_request_that_fails_resumes_the_collector_too() -> None:
    gc.enable()
    pause = StartPause()

    def failing(_: object) -> None:
        raise RuntimeError("boom")

    function = pause.until_first_answer(failing)
    with pytest.raises(RuntimeError, match="boom"):
        function(None)
    assert gc.isenabled()


def test_with_no_request_the_pause_ends_at_its_limit() -> None:
    gc.enable()
    pause = StartPause(limit_s=0.05)
    deadline = time.monotonic() + 30
    while not pause.resumed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pause.resumed
    assert gc.isenabled()


def test_resume_runs_once_even_when_called_together(monkeypatch: pytest.MonkeyPatch) -> None:
    gc.enable()
    pause = StartPause()
    freezes: list[int] = []
    monkeypatch.setattr(gc, "freeze", lambda: freezes.append(1))
    start = threading.Barrier(8)

    def resume() -> None:
        start.wait()
        pause.resume()

    threads = [threading.Thread(target=resume) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gc.isenabled()
    assert freezes == [1]


def test_a_process_running_without_the_collector_keeps_it_off() -> None:
    gc.disable()
    pause = StartPause()
    pause.until_first_answer(lambda: None)()
    assert not gc.isenabled()


_INSTANCE = """
import gc, json, sys
import flask
from functions_framework import _function_registry
import main
from shared import bootstrap

warm_ups = []
bootstrap.warm_up = warm_ups.append  # counted, not run: no stack here
enabled_before = gc.isenabled()
# Looked up as functions-framework looks a function up (hasattr, then getattr).
function = _function_registry.get_user_function("main.py", main, "admin_config")
paused = not gc.isenabled()
again = main.admin_config is function
app = flask.Flask("probe")
with app.test_request_context("/admin_config", method="GET"):  # refused for want of a token
    status = function(flask.request).status_code
print(json.dumps({"enabled_before": enabled_before, "paused": paused, "status": status, "warm_ups": warm_ups,
                  "again": again, "after": gc.isenabled(), "frozen": gc.get_freeze_count()}))
"""


def _instance(env: dict[str, str]) -> dict[str, object]:
    import json

    environment = {key: value for key, value in os.environ.items() if key not in ("K_SERVICE", "HALO_WARM_UP")}
    environment.update({"PYTHONPATH": str(ROOT), **env})
    command = [sys.executable, "-c", _INSTANCE]
    done = subprocess.run(command, check=False, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    figures: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def test_a_deployed_instance_pauses_from_the_lookup_to_its_first_answer() -> None:
    figures = _instance({"K_SERVICE": "admin_config"})  # as Cloud Run sets it
    assert figures["enabled_before"] is True
    assert figures["paused"] is True
    assert figures["warm_ups"] == ["admin_config"]  # once, though the framework looks the function up twice
    assert figures["again"] is True
    assert figures["status"] == 401
    assert figures["after"] is True
    assert isinstance(figures["frozen"], int) and figures["frozen"] > 0


def test_outside_a_deployment_the_collector_is_left_alone() -> None:
    figures = _instance({})
    assert figures["paused"] is False
    assert figures["after"] is True
    assert figures["frozen"] == 0
