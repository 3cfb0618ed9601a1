"""The garbage collector paused through a deployed instance's cold start (main.py).

A cold start allocates a few hundred thousand long-lived objects (our modules, the SDKs, their protobuf descriptors)
and almost no garbage. Python's collector, left on, walks all of them again and again while they load: measured on
the first reply of chat_send, one full collection alone took ~70 ms and the young ones that follow during the first
request add ~30 to 45 ms (`python -m bench cold_reply`). So the collector is paused from the moment the function is
looked up until its first request has been answered (or `LIMIT_S` has passed with none), and then what the start built
is frozen (`gc.freeze`: moved where no later collection walks it) before collection resumes. Reference counting frees
ordinary garbage all along; only reference cycles made during the pause wait, and those made by the start itself
stay frozen (bounded: made once per instance).
"""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import Callable
from typing import Any, TypeVar

LIMIT_S = 30.0  # the pause never outlives this, even when no request comes

Function = TypeVar("Function", bound=Callable[..., Any])


class StartPause:
    """Pauses the collector on creation; `resume` (once, from whichever comes first) freezes and resumes it."""

    def __init__(self, limit_s: float = LIMIT_S) -> None:
        self._lock = threading.Lock()
        self._was_enabled = gc.isenabled()
        self._resumed = False
        gc.disable()
        self._timer = threading.Timer(limit_s, self.resume)
        self._timer.name = "halo-collector-limit"
        self._timer.daemon = True
        self._timer.start()

    @property
    def resumed(self) -> bool:
        return self._resumed

    def resume(self) -> None:
        with self._lock:
            if self._resumed:
                return
            self._resumed = True
        self._timer.cancel()
        if self._was_enabled:  # a process that runs without the collector keeps it off
            gc.freeze()
            gc.enable()

    def until_first_answer(self, function: Function) -> Function:
        """`function`, resuming the collector once its first call has returned or raised."""

        @functools.wraps(function)
        def first_answer_resumes(*args: Any, **kwargs: Any) -> Any:
            if self._resumed:
                return function(*args, **kwargs)
            try:
                return function(*args, **kwargs)
            finally:
                self.resume()

        return first_answer_resumes  # type: ignore[return-value]
