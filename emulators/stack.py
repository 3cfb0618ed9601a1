"""The whole local stack, in-process orchestration: used by `make dev` (fixed ports) and the tests (free ports).

Parts: PostgreSQL (private cluster, migrated, seeded), Google's Firestore and Pub/Sub emulators, the Firebase Auth
emulator (firebase-tools), our Cloud Tasks emulator, the Xendit and FCM stand-ins, the push relay, and the gateway
serving every function. Pub/Sub topics get push subscriptions to the gateway through the relay; every Cloud Tasks
queue is created. Internal callers carry real signed OIDC tokens, as in production: the stack makes one RSA key
(emulators/oidc_issuer.py), the Tasks emulator and the relay sign with it, and the functions verify against its
certificate, which the relay serves (HALO_OIDC_CERTS_URL).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from emulators.postgres import PostgresCluster
from emulators.process import ManagedProcess, free_port, options, port_open
from functions.manifest import FUNCTIONS, QUEUES

if TYPE_CHECKING:
    from shared.adapters.cloud_tasks import CloudTasksScheduler

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "demo-halo"
DATABASE = "halo"
TEMPLATE_DATABASE = "halo_template"
XENDIT_SECRET_KEY = "xnd_development_local_stack"
XENDIT_CALLBACK_TOKEN = "local-callback-token"
TASKS_SERVICE_ACCOUNT = f"tasks-invoker@{PROJECT}.iam.gserviceaccount.com"
PUSH_SERVICE_ACCOUNT = f"eventarc@{PROJECT}.iam.gserviceaccount.com"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class StackPorts:
    postgres: int
    firestore: int
    pubsub: int
    auth: int
    functions: int
    tasks: int
    xendit: int
    fcm: int
    relay: int
    auth_hub: int
    auth_logging: int

    @classmethod
    def from_firebase_json(cls, path: Path = ROOT / "firebase.json") -> StackPorts:
        emulators = json.loads(path.read_text())["emulators"]
        named = {
            name: int(emulators[name]["port"])
            for name in ("postgres", "firestore", "pubsub", "auth", "functions", "tasks", "xendit", "fcm")
        }
        return cls(
            **named,
            relay=int(emulators.get("relay", {}).get("port", 8126)),
            auth_hub=int(emulators.get("hub", {}).get("port", 4400)),
            auth_logging=int(emulators.get("logging", {}).get("port", 4500)),
        )

    @classmethod
    def free(cls) -> StackPorts:
        return cls(**{name: free_port() for name in cls.__dataclass_fields__})


def gcloud_emulators() -> Path | None:
    """The Cloud SDK's platform folder when its Firestore and Pub/Sub emulators are installed."""
    gcloud = shutil.which("gcloud")
    if gcloud is None or shutil.which("java") is None:
        return None
    platform = Path(gcloud).resolve().parents[1] / "platform"
    needed = (
        platform / "cloud-firestore-emulator" / "cloud_firestore_emulator",
        platform / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator",
    )
    return platform if all(path.exists() for path in needed) else None


class LocalStack:
    def __init__(
        self,
        ports: StackPorts,
        state_dir: Path,
        *,
        tick_s: float = 5.0,
        identity_cache_s: float = 5.0,
        progress: Progress = print,
        keep: bool = False,
        public_host: str | None = None,
        gateway_threads: int = 16,
    ) -> None:
        self.ports = ports
        # Requests the gateway serves at once, and the connections its pool may hold (one per thread).
        self.gateway_threads = gateway_threads
        self.state_dir = state_dir
        # Keep PostgreSQL, Firestore, Auth users and pending Cloud Tasks from one run to the next (`make dev KEEP=1`).
        self.keep = keep
        # Where phones and the Android emulator reach the stack (`HALO_HOST`); the parts apps talk to then listen
        # on every interface instead of loopback only.
        self.public_host = public_host or "127.0.0.1"
        self.bind_host = "127.0.0.1" if self.public_host in ("127.0.0.1", "localhost") else "0.0.0.0"
        self.log_dir = state_dir / "logs"
        self.tick_s = tick_s
        self.identity_cache_s = identity_cache_s
        self.progress = progress
        self.platform = gcloud_emulators()
        self.postgres = PostgresCluster(state_dir / "postgres", ports.postgres, self.log_dir)
        self.processes: list[ManagedProcess] = []
        self._ticker_stop = threading.Event()
        self._ticker: threading.Thread | None = None

    @property
    def has_gcloud(self) -> bool:
        return self.platform is not None

    @property
    def functions_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.functions}"

    @property
    def relay_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.relay}"

    @property
    def oidc_key(self) -> Path:
        return self.state_dir / "oidc" / "key.pem"

    def caller_token(self, function: str, *, audience: str | None = None, email: str | None = None) -> str:
        """The OIDC token Cloud Tasks (for a task handler) or Pub/Sub push (for an event function) would send to
        `function`; `audience` or `email` shape a wrong one."""
        from emulators.oidc_issuer import LocalIssuer, ensure_key
        from functions.manifest import BY_NAME

        account = TASKS_SERVICE_ACCOUNT if BY_NAME[function].trigger == "task" else PUSH_SERVICE_ACCOUNT
        issuer = LocalIssuer(ensure_key(self.oidc_key))
        return issuer.token(email=email or account, audience=audience or f"{self.functions_url}/{function}")

    def public_url(self, port: int) -> str:
        return f"http://{self.public_host}:{port}"

    def app_endpoints(self) -> dict[str, str]:
        """What an app (a phone on the LAN, the Android emulator, a browser) is pointed at."""
        return {
            "functions": f"{self.public_url(self.ports.functions)}/<function_name>",
            "openapi": f"{self.public_url(self.ports.functions)}/openapi.json",
            "firestore": f"{self.public_host}:{self.ports.firestore}",
            "auth": f"{self.public_host}:{self.ports.auth}",
            "xendit invoice pages": self.public_url(self.ports.xendit),
        }

    def env(self) -> dict[str, str]:
        """What a function instance (and a test acting as a client) needs to reach this stack."""
        dead = f"127.0.0.1:{self.ports.auth_logging}"  # nothing answers there: fail fast instead of reaching Google
        return {
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "GCLOUD_PROJECT": PROJECT,
            "HALO_DB_HOST": "127.0.0.1",
            "HALO_DB_PORT": str(self.ports.postgres),
            "HALO_DB_NAME": DATABASE,
            "HALO_DB_USER": "postgres",
            "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{self.ports.firestore}" if self.has_gcloud else dead,
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{self.ports.pubsub}" if self.has_gcloud else dead,
            "FIREBASE_AUTH_EMULATOR_HOST": f"127.0.0.1:{self.ports.auth}",
            "HALO_TASKS_EMULATOR_HOST": f"127.0.0.1:{self.ports.tasks}",
            "HALO_TASKS_SERVICE_ACCOUNT": TASKS_SERVICE_ACCOUNT,
            "HALO_PUSH_SERVICE_ACCOUNT": PUSH_SERVICE_ACCOUNT,
            "HALO_OIDC_CERTS_URL": f"{self.relay_url}/oauth2/v1/certs",
            "HALO_FUNCTIONS_BASE_URL": self.functions_url,
            "HALO_XENDIT_HOST": f"http://127.0.0.1:{self.ports.xendit}",
            "HALO_XENDIT_SECRET_KEY": XENDIT_SECRET_KEY,
            "HALO_XENDIT_CALLBACK_TOKEN": XENDIT_CALLBACK_TOKEN,
            "HALO_FCM_BASE_URL": f"http://127.0.0.1:{self.ports.fcm}",
            "HALO_FCM_USE_CREDENTIALS": "false",
            "HALO_IDENTITY_CACHE_S": str(self.identity_cache_s),
            "HALO_DB_POOL_SIZE": str(self.gateway_threads),
            # The scheduler's stand-in ticks every tick_s: a sweep stays no longer, so sweeps do not pile up.
            "HALO_OUTBOX_SWEEP_STAY_S": str(max(0.0, self.tick_s - 1)),
        }

    # -- start -------------------------------------------------------------------------------------------------

    def start(self) -> None:
        started = time.monotonic()
        try:
            self._start_children()
            self._prepare_database()
            self._wait_children()
            self._start_gateway()
            self._wire()
            self._seed()
            self._start_ticker()
        except BaseException:
            self.stop()
            raise
        self.progress(f"stack ready in {time.monotonic() - started:.1f}s")

    def _start_children(self) -> None:
        self.progress(f"postgres   starting on 127.0.0.1:{self.ports.postgres}")
        self._postgres_thread = _Background(self.postgres.start)
        python = sys.executable
        if self.platform:
            self._spawn("firestore", self._firestore_command())
            self._spawn(
                "pubsub",
                [
                    str(self.platform / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"),
                    "--host=127.0.0.1",
                    f"--port={self.ports.pubsub}",
                ],
            )
        else:
            self.progress("!! Google Cloud CLI emulators not installed: Firestore and Pub/Sub are NOT running")
        self._spawn("auth", self._auth_command(), cwd=self.state_dir)
        from emulators.oidc_issuer import ensure_key

        ensure_key(self.oidc_key)
        # Cloud Tasks keeps its queues and tasks through anything: the emulator saves them when it stops and loads
        # them when it starts again (a fault test's restart), and, kept, from one run to the next.
        tasks_state = self.state_dir / "tasks.json"
        if not self.keep:
            tasks_state.unlink(missing_ok=True)
        tasks = {
            "--host": "127.0.0.1",
            "--port": str(self.ports.tasks),
            "--state-file": str(tasks_state),
            "--oidc-key": str(self.oidc_key),
        }
        self._spawn("tasks", [python, "-m", "emulators.tasks_emulator", *options(tasks)])
        relay = {
            "--host": "127.0.0.1",
            "--port": str(self.ports.relay),
            "--functions-url": self.functions_url,
            "--oidc-key": str(self.oidc_key),
            "--service-account": PUSH_SERVICE_ACCOUNT,
        }
        self._spawn("relay", [python, "-m", "emulators.push_relay", *options(relay)])
        xendit = {
            "--host": self.bind_host,
            "--port": str(self.ports.xendit),
            "--public-url": self.public_url(self.ports.xendit),
            "--secret-key": XENDIT_SECRET_KEY,
            "--callback-url": f"{self.functions_url}/xendit_webhook",
            "--callback-token": XENDIT_CALLBACK_TOKEN,
        }
        self._spawn("xendit", [python, "-m", "emulators.xendit_standin", *options(xendit)])
        self._spawn("fcm", [python, "-m", "emulators.fcm_sink", "--host", "127.0.0.1", "--port", str(self.ports.fcm)])

    def _firestore_command(self, *, import_kept: bool = False) -> list[str]:
        assert self.platform is not None
        command = [
            str(self.platform / "cloud-firestore-emulator" / "cloud_firestore_emulator"),
            "start",
            f"--host={self.bind_host}",
            f"--port={self.ports.firestore}",
            f"--rules={ROOT / 'firestore.rules'}",
            f"--project_id={PROJECT}",
        ]
        exported = self._firestore_export / "firestore_export" / "firestore_export.overall_export_metadata"
        if (self.keep or import_kept) and exported.exists():
            command.append(f"--import-data={exported}")
        return command

    @property
    def _firestore_export(self) -> Path:
        return self.state_dir / "firestore"

    def _auth_command(self) -> list[str]:
        firebase = ROOT / "node_modules" / ".bin" / "firebase"
        if not firebase.exists():
            raise RuntimeError("firebase-tools is not installed: run `make bootstrap` (npm ci)")
        config = self.state_dir / "firebase.auth.json"
        config.write_text(
            json.dumps(
                {
                    "emulators": {
                        "auth": {"host": self.bind_host, "port": self.ports.auth},
                        "hub": {"host": "127.0.0.1", "port": self.ports.auth_hub},
                        "logging": {"host": "127.0.0.1", "port": self.ports.auth_logging},
                        "ui": {"enabled": False},
                        "singleProjectMode": True,
                    }
                }
            )
        )
        command = [str(firebase), "emulators:start", "--only", "auth", "--project", PROJECT, "--config", str(config)]
        if self.keep:
            saved = self.state_dir / "auth"
            if (saved / "firebase-export-metadata.json").exists():
                command += ["--import", str(saved)]
            command += ["--export-on-exit", str(saved)]
        return command

    def _spawn(self, name: str, argv: list[str], cwd: Path | None = None) -> None:
        env = {**os.environ, **self.env(), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        self.processes.append(ManagedProcess(name, argv, log_dir=self.log_dir, env=env, cwd=cwd or ROOT).start())

    def _process(self, name: str) -> ManagedProcess:
        return next(process for process in self.processes if process.name == name)

    def _readiness(self) -> dict[str, Callable[[], bool]]:
        return {
            "firestore": lambda: _http_ok(f"http://127.0.0.1:{self.ports.firestore}/"),
            "pubsub": lambda: port_open(self.ports.pubsub),
            "auth": lambda: _http_ok(f"http://127.0.0.1:{self.ports.auth}/"),
            "tasks": lambda: port_open(self.ports.tasks),
            "xendit": lambda: port_open(self.ports.xendit),
            "fcm": lambda: port_open(self.ports.fcm),
            "relay": lambda: _http_ok(f"{self.relay_url}/oauth2/v1/certs"),
            "gateway": lambda: _http_ok(f"{self.functions_url}/openapi.json"),
        }

    def _wait_children(self) -> None:
        checks = self._readiness()
        for process in self.processes:
            process.wait_ready(checks[process.name], timeout=90)
            self.progress(f"{process.name:<10} ready on 127.0.0.1:{getattr(self.ports, process.name)}")

    def restart(self, name: str) -> None:
        """Start one part again on its port with its first command line (fault tests stop parts mid-run). An
        emulator comes back empty, but Cloud Tasks (its tasks saved on stop) and Pub/Sub (its topics and push
        subscriptions wired again) come back as the managed services keep them through an outage; PostgreSQL keeps
        its data.

        The functions are held still while Pub/Sub is wired: a topic that exists before its subscription accepts a
        message and delivers it to no one, and a publish from a retry landing in that moment would be marked done
        and lost. Until then (the emulator starting, no topic yet) their publishes fail and wait in the outbox; held,
        their requests wait and then publish to a whole Pub/Sub."""
        if name == "postgres":
            self.postgres.stop()
            self.postgres.start()
            return
        process = self._process(name)
        if name == "pubsub" and self.has_gcloud:
            self._start_again(process)
            with self._process("gateway").held():
                self._wire_pubsub()
            return
        self._start_again(process)
        if name == "tasks":
            self._ensure_queues()  # kept in its state file; created again should that file be gone

    def blip(self, name: str, down_s: float = 0.0) -> None:
        """An outage of one part, as a managed service has one: down for `down_s` seconds, then back with everything
        it held (the soak's chaos). PostgreSQL and Cloud Tasks keep their data by themselves and Pub/Sub is wired
        again (messages it held undelivered are lost: the emulator keeps none); the Firestore emulator's documents
        are exported while the functions are held still (so no write lands after the export) and imported when it
        starts again."""
        if name == "firestore" and self.has_gcloud:
            firestore = self._process("firestore")
            with self._process("gateway").held():
                self._export_firestore()
                firestore.kill()  # at once: the functions are held no longer than the export takes
            time.sleep(down_s)
            firestore.argv = self._firestore_command(import_kept=True)
            firestore.start()
            firestore.wait_ready(self._readiness()["firestore"], timeout=90)
            return
        if name == "postgres":
            self.postgres.stop()
        else:
            self._process(name).stop()
        time.sleep(down_s)
        self.restart(name)

    def _start_again(self, process: ManagedProcess) -> None:
        process.stop()
        process.start()
        process.wait_ready(self._readiness()[process.name], timeout=90)

    def _prepare_database(self) -> None:
        self._postgres_thread.join()
        from emulators.seed import seed_database
        from shared.adapters.migrations import migrate
        from shared.adapters.postgres.database import Database

        if self.keep and self.postgres.has_database(DATABASE):
            db = Database(lambda: self.postgres.connect(DATABASE), max_idle=1)
            applied = migrate(db)
            seed_database(db)
            db.close()
            self.progress(f"postgres   kept from the last run (db {DATABASE}; new migrations applied: {applied})")
            return
        for name in (TEMPLATE_DATABASE, DATABASE):
            self.postgres.drop_database(name)
        self.postgres.create_database(TEMPLATE_DATABASE)
        template = Database(lambda: self.postgres.connect(TEMPLATE_DATABASE), max_idle=1)
        applied = migrate(template)
        template.close()
        self.postgres.create_database(DATABASE, template=TEMPLATE_DATABASE)
        db = Database(lambda: self.postgres.connect(DATABASE), max_idle=1)
        seed_database(db)
        db.close()
        self.progress(f"postgres   ready on 127.0.0.1:{self.ports.postgres} (db {DATABASE}, migrations {applied})")

    def _start_gateway(self) -> None:
        gunicorn = Path(sys.executable).parent / "gunicorn"
        # Idle connections are kept as long as Google's front end keeps them (its keep-alive is 610 s): an app that
        # pauses between calls reuses its connection instead of meeting one closed under it.
        gateway = {
            "--worker-class": "gthread",
            "--threads": str(self.gateway_threads),
            "--workers": "1",
            "--bind": f"{self.bind_host}:{self.ports.functions}",
            "--timeout": "120",
            "--keep-alive": "620",
        }
        self._spawn("gateway", [str(gunicorn), "--no-control-socket", *options(gateway), "emulators.gateway:app"])
        self._process("gateway").wait_ready(self._readiness()["gateway"], timeout=60)
        served = f"{len(FUNCTIONS)} functions, /openapi.json, /docs, /_kit/"
        self.progress(f"gateway    ready on {self.functions_url} ({served})")

    def _wire(self) -> None:
        self._ensure_queues()
        self.progress(f"tasks      queues: {', '.join(queue.name for queue in QUEUES)}")
        if self.has_gcloud:
            self.progress(f"pubsub     topics → push (signed by the relay): {', '.join(self._wire_pubsub())}")

    def purge_queues(self) -> None:
        """Every task of every queue deleted: timers left by earlier work will not fire."""
        scheduler = self._scheduler()
        for queue in QUEUES:
            scheduler.purge_queue(queue.name)

    def _scheduler(self) -> CloudTasksScheduler:
        from shared.adapters.cloud_tasks import CloudTasksScheduler

        return CloudTasksScheduler(
            project=PROJECT,
            location="asia-southeast2",
            target_base_url=self.functions_url,
            service_account_email=TASKS_SERVICE_ACCOUNT,
            emulator_host=f"127.0.0.1:{self.ports.tasks}",
        )

    def _ensure_queues(self) -> None:
        scheduler = self._scheduler()
        for queue in QUEUES:
            scheduler.ensure_queue(
                queue=queue.name,
                max_attempts=queue.max_attempts,
                min_backoff_s=queue.min_backoff_s,
                max_backoff_s=queue.max_backoff_s,
                max_doublings=queue.max_doublings,
            )

    def _wire_pubsub(self) -> list[str]:
        """Every Pub/Sub-triggered function's topic and push subscription (an emulator starts with none), pushing
        through the relay, which adds the push account's token."""
        from emulators.pubsub_wiring import wire_push_subscriptions

        return wire_push_subscriptions(PROJECT, f"127.0.0.1:{self.ports.pubsub}", self.relay_url)

    def _seed(self) -> None:
        from emulators.seed import seed_auth
        from shared.adapters.postgres.database import Database

        db = Database(lambda: self.postgres.connect(DATABASE), max_idle=1)
        seed_auth(f"http://127.0.0.1:{self.ports.auth}", PROJECT, db)
        db.close()
        self.progress("seed       admin admin@halo.local, mitras +6281100000001..3, tiers, config")

    def _start_ticker(self) -> None:
        """Cloud Scheduler's stand-in: publish to every scheduled topic every few seconds."""
        if not self.has_gcloud:
            return
        from emulators.pubsub_wiring import publish_tick

        scheduled = [spec.topic for spec in FUNCTIONS if spec.schedule and spec.topic]

        def tick() -> None:
            while not self._ticker_stop.wait(self.tick_s):
                for topic in scheduled:
                    publish_tick(PROJECT, f"127.0.0.1:{self.ports.pubsub}", topic)

        self._ticker = threading.Thread(target=tick, name="scheduler", daemon=True)
        self._ticker.start()

    # -- stop --------------------------------------------------------------------------------------------------

    def stop(self) -> None:
        self._ticker_stop.set()
        if self._ticker:
            self._ticker.join(timeout=5)
        if self.keep:
            self._export_firestore()
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        self.postgres.stop()

    def _export_firestore(self) -> None:
        """The emulator's documents, saved for the next run's --import-data."""
        if not any(process.name == "firestore" and process.running for process in self.processes):
            return
        url = f"http://127.0.0.1:{self.ports.firestore}/emulator/v1/projects/{PROJECT}:export"
        self._firestore_export.mkdir(parents=True, exist_ok=True)
        body = {
            "database": f"projects/{PROJECT}/databases/(default)",
            "export_directory": str(self._firestore_export),
            "export_name": "firestore_export",
        }
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30):
                self.progress(f"firestore  documents saved to {self._firestore_export}")
        except OSError as exc:
            self.progress(f"!! firestore documents could not be saved ({exc}); the next run starts them empty")

    def describe(self) -> dict[str, object]:
        return {"ports": asdict(self.ports), "env": self.env(), "logs": str(self.log_dir)}


class _Background(threading.Thread):
    """Runs one start-up step beside the others and re-raises its failure on join."""

    def __init__(self, target: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self._step = target
        self._error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self._step()
        except BaseException as exc:
            self._error = exc

    def join(self, timeout: float | None = None) -> None:
        super().join(timeout)
        if self._error is not None:
            raise self._error


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_on_free_ports(
    state: Path,
    *,
    tick_s: float = 5.0,
    identity_cache_s: float = 5.0,
    progress: Progress = print,
    gateway_threads: int = 16,
) -> LocalStack:
    """A private stack (tests, benchmarks). Free ports are only free when looked at; another process may take one
    before we bind it, so a failed start is tried once more on new ports."""
    for attempt in (1, 2):
        local = LocalStack(
            StackPorts.free(),
            state,
            tick_s=tick_s,
            identity_cache_s=identity_cache_s,
            progress=progress,
            gateway_threads=gateway_threads,
        )
        try:
            local.start()
        except Exception:
            if attempt == 2:
                raise
            shutil.rmtree(state / "postgres", ignore_errors=True)
            continue
        return local
    raise AssertionError("unreachable")
