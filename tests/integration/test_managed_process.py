"""ManagedProcess.held: the fault tests hold the functions still while Pub/Sub is restarted and wired again.

A real child counts on a socket; held, it counts no further (its whole process group, the child's own child too),
its connection stays open, and afterwards it goes on where it was, also when the block raised.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.process import ManagedProcess

# A parent that starts a child and waits for it; the child sends a tick every 10 ms on the connection it is given.
COUNTER = """
import socket, subprocess, sys, time
if sys.argv[1] == "parent":
    subprocess.run([sys.executable, "-c", sys.argv[3], "child", sys.argv[2]])
else:
    sock = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
    while True:
        sock.sendall(b".")
        time.sleep(0.01)
"""


class Ticks:
    """The counter's connection: how many ticks have arrived so far."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.conn.setblocking(False)
        self.count = 0

    def read(self) -> int:
        try:
            while chunk := self.conn.recv(4096):
                self.count += len(chunk)
        except BlockingIOError:
            pass
        return self.count

    def grow_within(self, seconds: float) -> bool:
        start = self.read()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.read() > start:
                return True
            time.sleep(0.01)
        return False


@pytest.fixture
def counter(tmp_path: Path) -> Iterator[tuple[ManagedProcess, Ticks]]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        process = ManagedProcess(
            "counter", [sys.executable, "-c", COUNTER, "parent", str(port), COUNTER], log_dir=tmp_path
        ).start()
        server.settimeout(10)
        conn, _ = server.accept()
    try:
        ticks = Ticks(conn)
        assert ticks.grow_within(5), "the counter is running"
        yield process, ticks
    finally:
        process.stop()
        conn.close()


def test_a_held_process_group_makes_no_progress_and_goes_on_afterwards(
    counter: tuple[ManagedProcess, Ticks],
) -> None:
    process, ticks = counter
    with process.held():
        time.sleep(0.1)  # a tick already on its way may still arrive
        during = ticks.read()
        assert not ticks.grow_within(0.5), "held, the child of the group sends nothing"
        assert ticks.read() == during
    assert ticks.grow_within(5), "released, it goes on on the same connection"


def test_a_held_process_is_released_when_the_block_fails(counter: tuple[ManagedProcess, Ticks]) -> None:
    process, ticks = counter
    with pytest.raises(RuntimeError, match="mid-restart"), process.held():
        raise RuntimeError("mid-restart")
    assert ticks.grow_within(5)


def test_holding_a_process_that_has_exited_is_a_no_op(tmp_path: Path) -> None:
    process = ManagedProcess("done", [sys.executable, "-c", "pass"], log_dir=tmp_path).start()
    assert process.proc is not None
    process.proc.wait(10)
    with process.held():
        pass
    process.stop()
