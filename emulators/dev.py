"""`make dev`: the whole local stack in the foreground on firebase.json's ports; Ctrl-C stops everything.

`make dev KEEP=1` keeps PostgreSQL, Firestore, the Auth emulator's users and pending Cloud Tasks from one run to the
next (in .local/dev); by default every run starts clean. `HALO_HOST=<address>` makes the stack reachable from a phone
on the LAN or the Android emulator (10.0.2.2): the parts the apps use listen on every interface, and the URLs it
hands out (the Xendit stand-in's invoice pages) name that address.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

from emulators.preflight import problems
from emulators.stack import ROOT, LocalStack, StackPorts

STATE = ROOT / ".local" / "dev"


def _say(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make dev", description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the data of the last run (make dev KEEP=1)")
    args = parser.parse_args(argv)
    public_host = os.environ.get("HALO_HOST") or None
    ports = StackPorts.from_firebase_json()
    stack = LocalStack(ports, Path(STATE), tick_s=5.0, progress=_say, keep=args.keep, public_host=public_host)
    found = problems(ports, bind_host=stack.bind_host)
    if found:
        print("make dev cannot start:", file=sys.stderr)
        for problem in found:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    if args.keep:
        _say(f"keeping the data of the last run ({STATE}); `make reset` forgets it")
    else:
        shutil.rmtree(STATE, ignore_errors=True)
        _say("starting clean (`make dev KEEP=1` keeps data between runs)")
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
        for name, where in stack.app_endpoints().items():
            _say(f"  {name:<22} {where}")
        _say("A function instance's environment (to run code against this stack):")
        for name, value in sorted(stack.env().items()):
            _say(f"  {name}={value}")
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
