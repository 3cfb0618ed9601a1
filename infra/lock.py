"""`requirements.lock`: what the deployed functions install, and whether it is what the tests ran.

`make lock` writes the lock with pip-tools (`pip-compile --generate-hashes`) from the human pins in
`requirements.txt` under `constraints.txt`: every package the functions need, transitive ones included, at one
version, with the SHA-256 of every file PyPI serves for it. infra/functions.tf ships the lock's content as the
`requirements.txt` of the functions' source, so the Cloud Functions Python buildpack installs exactly those files
(pip's hash-checking mode: a file with another hash, or a package the lock does not name, fails the build).

`problems()` says where the lock disagrees with the pins, the constraints, or the packages installed where the
tests run; tests/unit/test_lock.py and `make deploy` both refuse a lock with any. Reading only local files, it needs
no network.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PINS = ROOT / "requirements.txt"
CONSTRAINTS = ROOT / "constraints.txt"
REGENERATE = "run `make lock` (and commit requirements.lock)"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class Locked:
    version: str
    hashes: tuple[str, ...]


def normalize(name: str) -> str:
    """PEP 503: `Flask`, `firebase_admin` and `google.cloud` name the same package as `flask`, `firebase-admin`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    """`name==version` lines (requirements or constraints format); options, includes and comments are skipped."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if match := _PIN.match(line):
            pins[normalize(match[1])] = match[2]
    return pins


def read_lock(path: Path = LOCK) -> dict[str, Locked]:
    """Each locked package, its version and hashes (an entry continues over `\\`-joined lines)."""
    entries: dict[str, Locked] = {}
    text = path.read_text().replace("\\\n", " ")
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if match := _PIN.match(line):
            entries[normalize(match[1])] = Locked(match[2], tuple(_HASH.findall(line)))
    return entries


def installed_versions() -> dict[str, str]:
    """The distributions of the running interpreter (the virtualenv the tests run in)."""
    found: dict[str, str] = {}
    for distribution in metadata.distributions():
        name = distribution.metadata["Name"]
        if name:
            found.setdefault(normalize(name), distribution.version)
    return found


def problems(
    *,
    lock: Mapping[str, Locked] | None = None,
    pins: Mapping[str, str] | None = None,
    constraints: Mapping[str, str] | None = None,
    installed: Mapping[str, str] | None = None,
) -> list[str]:
    """Every way the lock differs from what was pinned and tested; empty when it is what the tests ran. Each
    argument defaults to the repository's file (or, for `installed`, to this interpreter's packages)."""
    lock = read_lock() if lock is None else lock
    pins = read_pins(PINS) if pins is None else pins
    constraints = read_pins(CONSTRAINTS) if constraints is None else constraints
    installed = installed_versions() if installed is None else installed
    found: list[str] = []
    if not lock:
        return [f"requirements.lock names no package: {REGENERATE}"]
    for name, version in sorted(pins.items()):
        if name not in lock:
            found.append(f"{name}=={version} is pinned in requirements.txt but not locked: {REGENERATE}")
        elif lock[name].version != version:
            locked = lock[name].version
            found.append(f"{name}: requirements.txt pins {version}, requirements.lock has {locked}: {REGENERATE}")
    for name, entry in sorted(lock.items()):
        if name not in constraints:
            found.append(f"{name}=={entry.version} is locked but not in constraints.txt: the tests never pinned it")
        elif constraints[name] != entry.version:
            constrained = constraints[name]
            found.append(f"{name}: constraints.txt has {constrained}, the lock {entry.version}: {REGENERATE}")
        if name not in installed:
            found.append(f"{name}=={entry.version} is locked but not installed where the tests run")
        elif installed[name] != entry.version:
            found.append(f"{name}: the tests run {installed[name]}, requirements.lock deploys {entry.version}")
        if not entry.hashes:
            found.append(f"{name}=={entry.version} has no --hash in requirements.lock: {REGENERATE}")
    return found
