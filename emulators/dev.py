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
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        stack.start()
        _say("")
        _say("Halo Bestie local stack is up (project demo-halo). Point the apps at:")
        for name, value in sorted(stack.env().items()):
            _say(f"  {name}={value}")
        _say(f"  functions: {stack.functions_url}/<function_name>   OpenAPI: {stack.functions_url}/openapi.json")
        _say(f"  logs: {stack.log_dir}")
        _say("Press Ctrl-C to stop everything.")
        while not stopping.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        _say("stopping ...")
        stack.stop()
        _say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
