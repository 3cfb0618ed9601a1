"""`make dev`: the whole local stack in the foreground on firebase.json's ports; Ctrl-C stops everything."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

from emulators.stack import ROOT, LocalStack, StackPorts


def _say(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


def main() -> int:
    stack = LocalStack(StackPorts.from_firebase_json(), Path(ROOT / ".local" / "dev"), tick_s=5.0, progress=_say)
    stopping = threading.Event()
    # Explicit handlers: a shell that started us in the background may have left SIGINT ignored. While starting,
    # Ctrl-C interrupts (start() stops what it began); once up, it asks the main loop to stop.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        stack.start()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
        _say("")
        _say("Halo Bestie local stack is up (project demo-halo). Point the apps at:")
        for name, value in sorted(stack.env().items()):
            _say(f"  {name}={value}")
        _say(f"  functions: {stack.functions_url}/<function_name>   OpenAPI: {stack.functions_url}/openapi.json")
        _say(f"  logs: {stack.log_dir}")
        _say("Press Ctrl-C to stop everything.")
        _say("")
        _say("See it work: run `make demo` in another terminal (a narrated client/mitra session, under a minute).")
        stopping.wait()
    except KeyboardInterrupt:
        pass
    finally:
        _say("stopping ...")
        stack.stop()
        _say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
