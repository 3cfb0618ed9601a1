"""What `make dev` checks before it starts anything: every part it runs can run here, and every port is free.

Each problem says what is missing and how to get it on the common systems, so a new machine is set up from the
message alone. The tests' private stacks do not insist on the Google Cloud CLI's emulators (their tests are skipped,
loudly); `make dev` does, since an app pointed at a Firestore that is not there fails in confusing ways.
"""

from __future__ import annotations

import shutil
import socket
from dataclasses import dataclass, fields
from pathlib import Path

from emulators.postgres import find_bin_dir
from emulators.stack import ROOT, StackPorts, gcloud_emulators

_JAVA = (
    "Java 11 or newer (17 recommended) runs Google's Firestore and Pub/Sub emulators. Debian/Ubuntu: "
    "`sudo apt-get install openjdk-17-jre-headless`; macOS: `brew install openjdk@17`; Windows: use WSL2 (Ubuntu)."
)
_GCLOUD = (
    "the Google Cloud CLI's Firestore and Pub/Sub emulators are not installed. Debian/Ubuntu (with Google's apt "
    "repository): `sudo apt-get install google-cloud-cli google-cloud-cli-firestore-emulator "
    "google-cloud-cli-pubsub-emulator`; macOS or any system with the CLI: `gcloud components install "
    "cloud-firestore-emulator pubsub-emulator beta`."
)
_POSTGRES = (
    "PostgreSQL 15+ server binaries were not found. Debian/Ubuntu: `sudo apt-get install postgresql` (`make dev` "
    "does it itself when run as root); macOS: `brew install postgresql@15`."
)
_NODE = (
    "Node.js 20+ runs the Firebase Auth emulator. Debian/Ubuntu: `sudo apt-get install nodejs npm`; macOS: "
    "`brew install node`."
)
_FIREBASE = "firebase-tools (the Auth emulator) is not installed in node_modules: run `make bootstrap` (npm ci)."


@dataclass(frozen=True)
class Problem:
    part: str
    message: str

    def __str__(self) -> str:
        return f"{self.part}: {self.message}"


def problems(ports: StackPorts, *, bind_host: str = "127.0.0.1", need_gcloud: bool = True) -> list[Problem]:
    found: list[Problem] = []
    try:
        find_bin_dir()
    except (FileNotFoundError, RuntimeError):
        found.append(Problem("postgres", _POSTGRES))
    if shutil.which("java") is None:
        found.append(Problem("java", _JAVA))
    if need_gcloud and gcloud_emulators() is None and shutil.which("java") is not None:
        found.append(Problem("gcloud", _GCLOUD))
    if shutil.which("node") is None:
        found.append(Problem("node", _NODE))
    elif not (ROOT / "node_modules" / ".bin" / "firebase").exists():
        found.append(Problem("firebase-tools", _FIREBASE))
    for field in fields(ports):
        port = getattr(ports, field.name)
        if not _free(bind_host, port):
            found.append(Problem(field.name, _taken(field.name, port)))
    return found


def _free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _taken(part: str, port: int) -> str:
    return (
        f"port {port} is already in use (another `make dev`, or another program). See what holds it with "
        f"`ss -ltnp 'sport = :{port}'` (Linux) or `lsof -iTCP:{port} -sTCP:LISTEN` (macOS) and stop it, or give "
        f"`{part}` another port in {Path(ROOT / 'firebase.json').name}."
    )
