"""The local stack for one bench run, and the ways of arranging a world on it.

`stack()` starts one `LocalStack` on free ports in a temp folder the first time a bench asks for it, applies its
environment to this process (as tests/conftest.py does) and stops it when the interpreter exits. The helpers make
users the way the apps and tests do: Firebase sign-in through the Auth emulator, registration and login through
the gateway, mitras arranged with SQL as an admin would. `FunctionInstance` serves one function from its own
gunicorn process with the gateway's flags, as one deployed instance would.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import requests

from emulators.process import ManagedProcess, free_port, port_open
from emulators.simulator import App, AuthEmulator
from emulators.stack import DATABASE, PROJECT, LocalStack, gcloud_emulators, start_on_free_ports
from shared.adapters.postgres.database import Database
from tests.support import people
from tests.support.people import Pair

ROOT = Path(__file__).resolve().parents[1]
NO_GCLOUD = "skipped: the Google Cloud CLI's Firestore/Pub/Sub emulators are not installed on this machine"


class _Run:
    """What this bench run started: one stack, its database pool and Auth emulator client."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stack: LocalStack | None = None
        self.state: Path | None = None
        self.db: Database | None = None
        self.auth: AuthEmulator | None = None


_RUN = _Run()


def _progress(line: str) -> None:
    print(f"   [stack] {line}", file=sys.stderr, flush=True)


def skip_without_gcloud() -> str | None:
    """The report for a bench that needs Firestore/Pub/Sub when they are missing (checked before any start)."""
    return NO_GCLOUD if gcloud_emulators() is None else None


def stack() -> LocalStack:
    """The run's stack, started on first use (default timings: a 5 s identity cache, as in production)."""
    with _RUN.lock:
        if _RUN.stack is not None:
            return _RUN.stack
        _RUN.state = Path(tempfile.mkdtemp(prefix="halo-bench-"))
        atexit.register(_stop)
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so atexit still stops everything
        _RUN.stack = _start(_RUN.state)
        os.environ.update(_RUN.stack.env())
        from shared.config import get_settings

        get_settings.cache_clear()
        _forget_clients()
        return _RUN.stack


def _forget_clients() -> None:
    """Drop the clients a bench built before the stack existed (admin_dashboard runs on a private PostgreSQL, and
    `bootstrap.ports_on` builds the process's Firestore, Pub/Sub and Cloud Tasks clients from the settings of the
    moment): a later bench would otherwise reach the real Cloud Tasks instead of the emulator."""
    from shared import bootstrap

    for built in vars(bootstrap).values():
        if getattr(built, "__module__", None) == bootstrap.__name__ and hasattr(built, "cache_clear"):
            built.cache_clear()


def _start(state: Path) -> LocalStack:
    # Every process of the stack counts its operations for the cost model (shared/metering.py, bench/cost.py).
    meter = state / "meter"
    meter.mkdir(exist_ok=True)
    os.environ["HALO_METER_DIR"] = str(meter)
    return start_on_free_ports(state, tick_s=5.0, identity_cache_s=5.0, progress=_progress)


def _stop() -> None:
    for instance in list(FunctionInstance.running):
        instance.stop()
    if _RUN.db is not None:
        _RUN.db.close()
        _RUN.db = None
    if _RUN.stack is not None:
        _RUN.stack.stop()
        _RUN.stack = None
    if _RUN.state is not None and not os.environ.get("HALO_BENCH_KEEP"):
        shutil.rmtree(_RUN.state, ignore_errors=True)


def halo_db() -> Database:
    """The database the gateway serves, for arranging worlds and reading the record."""
    local = stack()
    with _RUN.lock:
        if _RUN.db is None:
            _RUN.db = Database(lambda: local.postgres.connect(DATABASE), max_idle=8)
        return _RUN.db


def auth() -> AuthEmulator:
    local = stack()
    with _RUN.lock:
        if _RUN.auth is None:
            _RUN.auth = AuthEmulator(f"http://127.0.0.1:{local.ports.auth}")
        return _RUN.auth


# -- people (tests/support/people.py, on the bench's stack) -----------------------------------------------------------


def stage() -> people.Stage:
    local = stack()
    return people.Stage(local.functions_url, auth(), halo_db(), local.ports.xendit)


def new_client(name: str = "Sari") -> App:
    return people.new_client(stage(), name)


def new_mitra(name: str = "Mitra Bench", *, online: bool = True) -> App:
    return people.new_mitra(stage(), name, online=online)


def account_id(app: App) -> str:
    return people.account_id(halo_db(), app)


def quiet_world() -> None:
    people.quiet_world(halo_db())


def settle_earlier_runs() -> None:
    """Every session earlier benches left open closed (in SQL: no goodbyes, no events) and every Cloud Tasks queue
    purged, so a bench that counts operations (bench/cost.py) counts only its own: the sessions of bench/chat.py's
    throughput drive would otherwise fire their warnings, expiries and closes, and free their mitras' slots, inside
    its window (they did: 67 warnings in one "typical session")."""
    local = stack()
    with halo_db().transaction() as tx:
        tx.execute(
            "UPDATE sessions SET status = 'closed', closed_at = COALESCE(closed_at, now()) "
            "WHERE status IN ('active', 'closing')"
        )
    quiet_world()
    local.purge_queues()


def paired(*, tier_id: str | None = None) -> Pair:
    """A client and a fresh mitra in an active session, through the real flow: request, blast, offer, accept.
    With `tier_id` the client first buys that tier (checkout, then paying on the Xendit stand-in's page)."""
    mitra = new_mitra()
    client = new_client()
    if tier_id is not None:
        pay_checkout(client, {"tier_id": tier_id, "purpose": "session"})
    body: dict[str, object] = {"tier_id": tier_id} if tier_id is not None else {"free_trial": True}
    return people.pair_up(client, mitra, body)


def pay_checkout(client: App, body: dict[str, object]) -> str:
    return people.pay_checkout(client, halo_db(), stack().ports.xendit, body)


def add_tier(duration_s: int, price: int = 5000) -> str:
    return people.add_tier(halo_db(), duration_s, price, prefix="bench")


def retire_tiers(tier_ids: Sequence[str]) -> None:
    people.retire_tiers(halo_db(), tier_ids)


def app_config(**values: object) -> AbstractContextManager[None]:
    """Settings changed for a bench (as the control center would), restored afterwards."""
    return people.settings(halo_db(), **values)


@contextmanager
def service_ports(max_idle: int = 64, counter: PgCounter | None = None) -> Iterator[Any]:
    """The real adapters from `shared.bootstrap`, on the stack's database, with a pool as large as a race
    (as that many instances would each hold their own connection); the pool is closed afterwards."""
    from shared import bootstrap
    from shared.adapters.postgres.database import connector_for
    from shared.config import get_settings

    stack()
    connect = counting_connect(counter) if counter is not None else connector_for(get_settings())
    pooled = Database(connect, max_idle=max_idle)
    try:
        yield bootstrap.ports_on(pooled)
    finally:
        pooled.close()


# -- figures -----------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def p50(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSES TARGET"


class Timed:
    """Times every call of one method of an adapter; `before`, given, is called as each call starts."""

    def __init__(self, target: Any, method: str, before: Callable[[], None] | None = None) -> None:
        self._target = target
        self._method = method
        self._before = before
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if name != self._method:
            return attribute

        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._before is not None:
                self._before()
            started = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        return timed


class PgCounter:
    """Statements and wire round trips on pg8000 connections, and the time spent in them."""

    def __init__(self) -> None:
        self.wire = 0
        self.statements: list[str] = []
        self.seconds = 0.0

    def reset(self) -> None:
        self.wire = 0
        self.statements = []
        self.seconds = 0.0


class _CountingSocket:
    """pg8000's buffered socket: each flush sends what was buffered and is followed by reading the answer."""

    def __init__(self, sock: Any, counter: PgCounter) -> None:
        self._sock = sock
        self._counter = counter

    def flush(self) -> Any:
        self._counter.wire += 1
        return self._sock.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def counting_connect(counter: PgCounter) -> Callable[[], Any]:
    from shared.adapters.postgres.database import connector_for
    from shared.config import get_settings

    connect = connector_for(get_settings())

    def counted() -> Any:
        conn = connect()
        conn._sock = _CountingSocket(conn._sock, counter)
        for method in ("execute_simple", "execute_unnamed", "execute_named"):
            original = getattr(conn, method)

            def wrapped(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                statement = args[0] if isinstance(args[0], str) else "<prepared>"
                counter.statements.append(" ".join(statement.split())[:32])
                started = time.perf_counter()
                try:
                    return _original(*args, **kwargs)
                finally:
                    counter.seconds += time.perf_counter() - started

            setattr(conn, method, wrapped)
        return conn

    return counted


# -- one function instance -----------------------------------------------------------------------------------------


class FunctionInstance:
    """One function served by its own gunicorn, with the gateway's flags (gthread, 1 worker, 16 threads)."""

    running: list[FunctionInstance] = []

    def __init__(
        self,
        target: str,
        *,
        source: Path = ROOT / "main.py",
        signature: str = "http",
        env: dict[str, str] | None = None,
    ) -> None:
        stack()  # the instance runs against the stack's environment
        self.target = target
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log_dir = Path(tempfile.mkdtemp(prefix=f"halo-bench-{target}-"))
        self._log_dir = log_dir
        gunicorn = Path(sys.executable).parent / "gunicorn"
        factory = (
            f"functions_framework:create_app(target={target!r}, source={str(source)!r}, signature_type={signature!r})"
        )
        self.env = env or {}
        # Our packages are imported from beside the source: for a deployed copy (bench/cold_start.deployed_copy),
        # its compiled bytecode, not the working tree's sources (which, under PYTHONDONTWRITEBYTECODE, would be
        # compiled again at every start: a cost no deployed instance pays).
        home = source.resolve().parent
        environment = {**os.environ, **self.env, "PYTHONPATH": str(home), "PYTHONUNBUFFERED": "1"}
        if "HALO_METER_DIR" not in self.env:  # an instance being measured does not count for the cost model
            environment.pop("HALO_METER_DIR", None)
        self.process = ManagedProcess(
            f"instance-{target}",
            [
                str(gunicorn),
                "--no-control-socket",
                "--worker-class",
                "gthread",
                "--threads",
                "16",
                "--workers",
                "1",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--timeout",
                "120",
                factory,
            ],
            log_dir=log_dir,
            env=environment,
            cwd=home,
        )

    def __enter__(self) -> FunctionInstance:
        FunctionInstance.running.append(self)
        try:
            self.process.start()
            self.process.wait_ready(self._answers, timeout=60)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _answers(self) -> bool:
        if not port_open(self.port):
            return False
        try:
            requests.get(self.url, timeout=5)
        except requests.RequestException:
            return False
        return True

    def stop(self) -> None:
        self.process.stop()
        if self in FunctionInstance.running:
            FunctionInstance.running.remove(self)
        shutil.rmtree(self._log_dir, ignore_errors=True)

    @property
    def master_pid(self) -> int:
        assert self.process.proc is not None
        return self.process.proc.pid

    @property
    def worker_pid(self) -> int:
        children = Path(f"/proc/{self.master_pid}/task/{self.master_pid}/children").read_text().split()
        if len(children) != 1:
            raise RuntimeError(f"expected one gunicorn worker under {self.master_pid}, found {children}")
        return int(children[0])

    def pids(self) -> list[int]:
        return [self.master_pid, self.worker_pid]

    def cpu_s(self) -> float:
        """User + system CPU seconds of the master and its worker so far."""
        return sum(cpu_seconds(pid) for pid in self.pids())


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


def pss_kib(pid: int) -> int:
    """Proportional set size: shared pages split between the processes sharing them (sums to what a container's
    memory cgroup is charged, near enough)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise KeyError("Pss")


@contextmanager
def consumers_elsewhere(*functions: str) -> Iterator[None]:
    """While a benchmark measures, the Pub/Sub emulator holds the pushes to these functions (the code under test
    still publishes and waits for the emulator's ack): in production they run on instances of their own, not on
    the cores of the one being measured. Afterwards the held bench messages are dropped, so the backlog does not
    load the machine for what follows."""
    from emulators import pubsub_wiring

    local = stack()
    host = local.env()["PUBSUB_EMULATOR_HOST"]
    for function in functions:
        pubsub_wiring.hold_pushes(PROJECT, host, function)
    try:
        yield
    finally:
        for function in functions:
            pubsub_wiring.drop_backlog(PROJECT, host, local.relay_url, function)
