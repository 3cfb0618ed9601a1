"""The functions deploy exactly what the tests ran: requirements.lock (what infra/ ships as the functions'
requirements.txt) names the versions requirements.txt pins, constraints.txt fixes and this virtualenv has, each
with its files' hashes. No network: only files and installed metadata are read."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from infra import lock

ROOT = Path(__file__).resolve().parents[2]


def test_the_lock_is_what_the_pins_constraints_and_the_tested_virtualenv_say() -> None:
    problems = lock.problems()
    assert not problems, "requirements.lock disagrees with what was tested:\n" + "\n".join(problems)


def test_the_lock_covers_every_pin_and_hashes_every_package() -> None:
    locked = lock.read_lock()
    pins = lock.read_pins(lock.PINS)
    assert pins, "requirements.txt pins nothing?"
    assert set(pins) <= set(locked)
    assert all(entry.hashes for entry in locked.values())
    assert "make lock" in lock.LOCK.read_text().split("\n\n", 1)[0], "the lock's header names the command that made it"


def test_the_lock_is_installable_in_hash_checking_mode() -> None:
    """pip refuses a hash-checked install where any requirement is unpinned, or comes from an index or path the lock
    names (the buildpack must fetch from its own configured index)."""
    text = lock.LOCK.read_text()
    for line in text.replace("\\\n", " ").splitlines():
        requirement = line.split("#", 1)[0].strip()
        if not requirement:
            continue
        assert not requirement.startswith(("-i", "--index-url", "--extra-index-url", "-f", "--find-links", "-e")), line
        assert re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*==\S+", requirement), f"not an exact pin: {line!r}"


def test_a_drifted_lock_is_caught() -> None:
    locked = lock.read_lock()
    pins = lock.read_pins(lock.PINS)
    constraints = lock.read_pins(lock.CONSTRAINTS)
    installed = {name: entry.version for name, entry in locked.items()}

    def found(**changed: Any) -> str:
        given = {"lock": locked, "pins": pins, "constraints": constraints, "installed": installed, **changed}
        return "\n".join(lock.problems(**given))

    assert found() == ""
    assert "google-cloud-firestore" in found(pins={**pins, "google-cloud-firestore": "9.9.9"})
    assert "leftpad" in found(pins={**pins, "leftpad": "1.0"})
    assert "grpcio" in found(constraints={**constraints, "grpcio": "0.0.1"})
    assert "the tests run 0.0.1" in found(installed={**installed, "grpcio": "0.0.1"})
    assert "no --hash" in found(lock={**locked, "grpcio": lock.Locked(locked["grpcio"].version, ())})


def test_names_are_compared_as_pip_compares_them() -> None:
    assert lock.normalize("Flask") == lock.normalize("flask")
    assert lock.normalize("firebase_admin") == lock.normalize("firebase-admin")
    assert lock.normalize("typing_extensions") == "typing-extensions"


def test_terraform_ships_the_lock_as_the_functions_requirements() -> None:
    functions_tf = (ROOT / "infra" / "functions.tf").read_text()
    assert 'fileset(local.repository_root, "requirements.txt")' in functions_tf
    shipped = r'source\.value == "requirements\.txt" \? file\("\$\{local\.repository_root\}/requirements\.lock"\)'
    assert re.search(shipped, functions_tf), "infra/functions.tf must package requirements.lock as requirements.txt"
