"""Start a child process in its own process group, wait until it is ready, hold it still for a moment, stop the
whole group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def options(flags: Mapping[str, str]) -> list[str]:
    """Command-line options from a table of flags and their values: `["--port", "8080", ...]`."""
    return [part for flag, value in flags.items() for part in (flag, value)]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class ProcessFailed(RuntimeError):
    pass


class ManagedProcess:
    """A child in its own session, so stopping it also stops what it started (e.g. a JVM under a launcher)."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_dir: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        user: tuple[int, int] | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
        self.env = env
        self.cwd = cwd
        self.user = user
        self.stop_signal = stop_signal
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
            user=self.user[0] if self.user else None,
            group=self.user[1] if self.user else None,
            extra_groups=[] if self.user else None,
        )
        log.close()
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, check: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ProcessFailed(
                    f"{self.name} exited with {self.proc.returncode}; see {self.log_path}\n{self.tail()}"
                )
            if check():
                return
            time.sleep(0.05)
        raise ProcessFailed(f"{self.name} not ready after {timeout:.0f}s; see {self.log_path}\n{self.tail()}")

    def wait_port(self, port: int, timeout: float = 60.0) -> None:
        self.wait_ready(lambda: port_open(port), timeout)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @contextmanager
    def held(self) -> Iterator[None]:
        """The whole group paused (SIGSTOP) for the block and resumed (SIGCONT) whatever happens: its connections
        stay open, and what it was in the middle of goes on afterwards."""
        if self.proc is None or self.proc.poll() is not None:
            yield
            return
        self._signal_group(signal.SIGSTOP)
        try:
            yield
        finally:
            self._signal_group(signal.SIGCONT)

    def kill(self) -> None:
        """The whole group ended at once (SIGKILL), as a crash ends it; nothing is saved on the way out."""
        if self.proc is not None and self.proc.poll() is None:
            self._signal_group(signal.SIGKILL)
            self.proc.wait(10)
        self._reap_group()

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self._reap_group()
            return
        self._signal_group(self.stop_signal)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.proc.wait(timeout)
        self._reap_group()

    def _signal_group(self, sig: int) -> None:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def _reap_group(self) -> None:
        """Children that outlive the leader (a JVM under a shell launcher) still belong to its group."""
        if self.proc is None:
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM if time.monotonic() < deadline - 2 else signal.SIGKILL)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
