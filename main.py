"""Deploy entry: `gcloud functions deploy NAME --entry-point NAME` finds every function here.

Each function's module is imported only when that function is looked up, so an instance pays at cold start
for its own function's dependencies and nothing else.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from functions.manifest import BY_NAME, FunctionSpec

__all__ = list(BY_NAME)


def __getattr__(name: str) -> Any:
    spec = BY_NAME.get(name)
    if spec is None:
        raise AttributeError(f"module 'main' has no function {name!r}")
    # Looked up once: functions-framework asks twice (`hasattr`, then `getattr`), and an instance warms up once.
    function = globals()[name] = _lookup(name, spec)
    return function


def _lookup(name: str, spec: FunctionSpec) -> Any:
    deployed = bool(os.environ.get("K_SERVICE")) or os.environ.get("HALO_WARM_UP") == "1"  # Cloud Run sets K_SERVICE
    if not deployed:
        return _function(name, spec)
    # On a deployed instance the cold start is what the first request waits for: the collector stays paused until
    # that request is answered (shared/collector.py).
    from shared.collector import StartPause

    pause = StartPause()
    try:
        if spec.trigger != "webhook":
            # The first PostgreSQL connection opens beside the import below. Not for the webhook, whose cold start
            # stays light (tests/unit/test_webhook_instance.py).
            from shared import bootstrap

            bootstrap.warm_up(name)
        return pause.until_first_answer(_function(name, spec))
    except BaseException:
        pause.resume()
        raise


def _function(name: str, spec: FunctionSpec) -> Any:
    function = getattr(importlib.import_module(spec.module), name)
    # functions-framework looks the function up while it builds the function's app: the app refuses large bodies.
    from functions._replies import MAX_BODY_BYTES, MAX_EVENT_BODY_BYTES, limit_bodies

    limit_bodies(MAX_EVENT_BODY_BYTES if spec.trigger == "pubsub" else MAX_BODY_BYTES)
    from shared import metering

    return _metered(name, function) if metering.enabled() else function


def _metered(name: str, function: Any) -> Any:
    """The function counting its invocations and CPU time for the cost model (bench/cost.py; HALO_METER_DIR)."""
    import functools
    import time

    from shared import metering

    @functools.wraps(function)
    def metered(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            metering.count(f"invocation {name}")
            metering.count(f"cpu_ms {name}", round((time.thread_time() - started) * 1000, 3))

    return metered
