"""A private PostgreSQL cluster for the local stack: initdb into a folder, serve on one port, drop it on stop.

PostgreSQL refuses to run as root, so when we are root the cluster belongs to `nobody`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

import pg8000.dbapi

from emulators.process import ManagedProcess


def find_bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[-3]))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("postgres")
    if found:
        return Path(found).resolve().parent
    raise RuntimeError("PostgreSQL server binaries not found: install Debian's postgresql package (make bootstrap)")


def _unprivileged() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


class PostgresCluster:
    def __init__(self, base_dir: Path, port: int, log_dir: Path) -> None:
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.socket_dir = base_dir / "socket"
        self.port = port
        self.log_dir = log_dir
        self.user = _unprivileged()
        self.process: ManagedProcess | None = None

    def start(self) -> None:
        bin_dir = find_bin_dir()
        fresh = not (self.data_dir / "PG_VERSION").exists()
        if self.user:
            # The unprivileged owner must be able to reach its folder, e.g. inside a 0700 temporary directory.
            self.base_dir.mkdir(parents=True, exist_ok=True)
            parent = self.base_dir.parent
            parent.chmod(parent.stat().st_mode | 0o011)
        for folder in (self.base_dir, self.data_dir, self.socket_dir):
            folder.mkdir(parents=True, exist_ok=True)
            if self.user:
                os.chown(folder, *self.user)
        if fresh:
            subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ],
                check=True,
                capture_output=True,
                user=self.user[0] if self.user else None,
                group=self.user[1] if self.user else None,
                extra_groups=[] if self.user else None,
                cwd="/",
            )
        # Durability settings are off: this cluster is disposable and only serves development and tests.
        self.process = ManagedProcess(
            "postgres",
            [
                str(bin_dir / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self.socket_dir),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
                "-c",
                "shared_buffers=128MB",
            ],
            log_dir=self.log_dir,
            user=self.user,
            cwd=Path("/"),
            stop_signal=signal.SIGINT,
        ).start()
        self.process.wait_ready(self._accepts_connections, timeout=30)

    def _accepts_connections(self) -> bool:
        try:
            self.connect("postgres").close()
        except (pg8000.dbapi.InterfaceError, pg8000.dbapi.DatabaseError, OSError):
            return False
        return True

    def connect(self, database: str) -> pg8000.dbapi.Connection:
        return pg8000.dbapi.connect(host="127.0.0.1", port=self.port, user="postgres", database=database, timeout=5)

    def create_database(self, name: str, template: str | None = None) -> None:
        conn = self.connect("postgres")
        conn.autocommit = True
        try:
            source = f" TEMPLATE {_ident(template)}" if template else ""
            conn.cursor().execute(f"CREATE DATABASE {_ident(name)}{source}")
        finally:
            conn.close()

    def has_database(self, name: str) -> bool:
        conn = self.connect("postgres")
        try:
            cursor = conn.cursor()
            _ident(name)  # a safe name, so it may stand in the statement as a literal
            cursor.execute(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
            return cursor.fetchone() is not None
        finally:
            conn.close()

    def drop_database(self, name: str) -> None:
        conn = self.connect("postgres")
        conn.autocommit = True
        try:
            conn.cursor().execute(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process:
            self.process.stop()


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a safe database name: {name!r}")
    return f'"{name}"'
