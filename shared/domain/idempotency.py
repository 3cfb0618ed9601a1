"""Retries and idempotency: a call repeated (its reply was lost) gets the first call's answer and changes nothing.

Two ways a repeat is recognised, both answering exactly as the first call did:
- with an `Idempotency-Key`: the first answer is kept per caller, function and key, with the hash of the request it
  answered (`IdempotencyRepository`, shared/adapters/postgres/idempotency.py), written in the same transaction as
  the change, so there is never a change without its answer nor an answer without its change;
- without one: each use case recognises its own repeat from what PostgreSQL already holds (the winner's accept finds
  its session, an early end finds the session it ended closing, ...), named in its module.

docs/contract.md "Retries and idempotency" is the contract.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import TypeAdapter

# How long a key's answer is kept: far longer than any app retries a call; then it is swept.
KEY_LIFETIME = timedelta(hours=24)
# A call repeated without a key is told apart from a new one by what PostgreSQL holds; where only time can tell
# (going online twice), a repeat comes within this of the first call.
REPEAT_WINDOW = timedelta(minutes=5)

Result = TypeVar("Result")


@dataclass(frozen=True)
class KeyedCall:
    """A call sent with an Idempotency-Key: who sent it, to which function, the key, and the hash of what it asked."""

    caller_uid: str
    function: str
    key: str
    request_hash: str


@dataclass(frozen=True)
class Answer:
    """What a keyed call was answered: the hash of its request, the HTTP status and the body."""

    request_hash: str
    status: int
    body: dict[str, Any]


def request_hash(body: Mapping[str, Any]) -> str:
    """The request as parsed (so field order, spacing and fields the backend ignores make no difference)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def same_request(answer: Answer, call: KeyedCall) -> bool:
    """A key answers one request: the same key with a different request is refused (`idempotency_key_reused`)
    rather than answered with another request's answer, or carried out as a new one."""
    return answer.request_hash == call.request_hash


def answer(call: KeyedCall, result: object) -> Answer:
    """A use case's result as the reply's body: each listed use case's result has the reply's fields, so the body
    kept is the body answered."""
    body = TypeAdapter(type(result)).dump_python(result, mode="json")
    return Answer(call.request_hash, 200, body)


def result_of(answer: Answer, kind: type[Result]) -> Result:
    return TypeAdapter(kind).validate_python(answer.body)
