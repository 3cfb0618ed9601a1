"""`python -m emulators.tasks_emulator --host 127.0.0.1 --port 8123`: serve until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from emulators.tasks_emulator import oidc
from emulators.tasks_emulator.dispatcher import Dispatcher
from emulators.tasks_emulator.server import build_server
from emulators.tasks_emulator.store import TaskStore

log = logging.getLogger("tasks_emulator")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.tasks_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--workers", type=int, default=32, help="tasks sent at the same time, at most")
    parser.add_argument("--state-file", type=Path, help="queues and tasks are loaded from here and saved on stop")
    parser.add_argument("--oidc-key", type=Path, help="RSA key (PEM) that signs tasks' OIDC tokens, as Google's does")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    store = TaskStore()
    if args.state_file is not None and args.state_file.exists():
        store.restore(json.loads(args.state_file.read_text()))
    dispatcher = Dispatcher(store, workers=args.workers, issuer=oidc.issuer_for(args.oidc_key))
    server = build_server(store, f"{args.host}:{args.port}")
    dispatcher.start()
    server.start()
    log.info("listening on %s:%d", args.host, args.port)

    stopping.wait()
    server.stop(grace=1).wait()
    dispatcher.stop()
    if args.state_file is not None:
        args.state_file.write_text(json.dumps(store.snapshot()))
        log.info("saved queues and tasks to %s", args.state_file)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
