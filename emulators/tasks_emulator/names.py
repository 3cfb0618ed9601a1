"""Resource names as Cloud Tasks spells them, checked the way it checks them."""

from __future__ import annotations

import re
import secrets

from emulators.tasks_emulator.errors import invalid

_PROJECT = r"[A-Za-z0-9.:-]+"
_LOCATION = r"[A-Za-z0-9-]+"
_PARENT = rf"projects/{_PROJECT}/locations/{_LOCATION}"
_QUEUE = re.compile(rf"({_PARENT})/queues/([A-Za-z0-9-]{{1,100}})")
_TASK = re.compile(rf"({_PARENT}/queues/[A-Za-z0-9-]{{1,100}})/tasks/([A-Za-z0-9_-]{{1,500}})")


def check_parent(parent: str) -> str:
    if not re.fullmatch(_PARENT, parent):
        raise invalid(f"Invalid resource field value in the request: parent {parent!r}")
    return parent


def split_queue(name: str) -> tuple[str, str]:
    """`projects/P/locations/L/queues/Q` → (`projects/P/locations/L`, `Q`)."""
    match = _QUEUE.fullmatch(name)
    if match is None:
        raise invalid(f"Invalid queue name {name!r}")
    return match[1], match[2]


def split_task(name: str) -> tuple[str, str]:
    """`…/queues/Q/tasks/T` → (queue name, `T`)."""
    match = _TASK.fullmatch(name)
    if match is None:
        raise invalid(f"Invalid task name {name!r}")
    return match[1], match[2]


def generated_task_id() -> str:
    # Cloud Tasks names unnamed tasks with a long run of digits; callers must not rely on more than that.
    return str(secrets.randbelow(10**19)).zfill(19)
