"""Retries with an Idempotency-Key: the first answer kept with the change, given again to every repeat.

A use case that takes a key calls `first_answer` inside its unit of work before it decides anything, and
`remember` just before it commits:

    with ports.uow() as uow:
        if (first := idempotency.first_answer(uow, keyed, Match)) is not None:
            return first                                   # a repeat: the first answer, nothing changed
        ...                                                # load → decide → save
        idempotency.remember(uow, keyed, match)
        committed = uow.commit()                           # the change and its answer, together

The key's lock (taken by `first_answer`, held until the change ends) makes two retries racing with one key take
turns: the second waits for the first's commit, then reads its answer. A process that dies before the commit leaves
neither change nor answer; one that dies after it leaves both, and the retry gets the answer.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from shared.domain import idempotency as rules
from shared.domain.idempotency import Answer, KeyedCall
from shared.errors import Conflict
from shared.services.ports import Ports
from shared.services.unit_of_work import UnitOfWork

Result = TypeVar("Result")
# Expired keys deleted per statement by the sweep, so one run never holds many rows at once.
SWEEP_BATCH = 5_000


class IdempotencyRepository(Protocol):
    """What keyed retries need from storage (shared/adapters/postgres/idempotency.py)."""

    def lock_key(self, call: KeyedCall) -> None: ...

    def answer_to(self, call: KeyedCall) -> Answer | None: ...

    def remember(self, call: KeyedCall, answer: Answer) -> None: ...

    def forget_expired(self, limit: int) -> int: ...

    def forget_caller(self, caller_uid: str) -> int: ...


def first_answer(uow: UnitOfWork, keyed: KeyedCall | None, kind: type[Result]) -> Result | None:
    """The answer the first call with this key got, or None for a first call (or no key). 409
    `idempotency_key_reused` when the key was used for a different request. Holds the key until the change ends."""
    if keyed is None:
        return None
    uow.idempotency.lock_key(keyed)
    return _replayed(uow.idempotency.answer_to(keyed), keyed, kind)


def peek(ports: Ports, keyed: KeyedCall | None, kind: type[Result]) -> Result | None:
    """`first_answer` without the lock, for a use case that reads before its change (pairing_accept's early read);
    the change itself asks `first_answer` again."""
    if keyed is None:
        return None
    with ports.uow(one_statement=True) as uow:
        stored = uow.idempotency.answer_to(keyed)
    return _replayed(stored, keyed, kind)


def remember(uow: UnitOfWork, keyed: KeyedCall | None, result: object) -> None:
    """The answer to this call, committed with the change it reports."""
    if keyed is not None:
        uow.idempotency.remember(keyed, rules.answer(keyed, result))


def sweep(ports: Ports) -> int:
    """Keys older than KEY_LIFETIME are forgotten, in batches; how many."""
    forgotten = 0
    while True:
        with ports.uow(one_statement=True) as uow:
            batch = uow.idempotency.forget_expired(SWEEP_BATCH)
        forgotten += batch
        if batch < SWEEP_BATCH:
            return forgotten


def _replayed(stored: Answer | None, keyed: KeyedCall, kind: type[Result]) -> Result | None:
    if stored is None:
        return None
    if not rules.same_request(stored, keyed):
        raise Conflict("this Idempotency-Key was used for another request", code="idempotency_key_reused")
    return rules.result_of(stored, kind)
