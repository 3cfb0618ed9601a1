"""Who a verified Firebase user is to us: PostgreSQL decides (shared.domain.accounts.identity_of), not the token's
claims. Every authenticated call asks; the instance remembers the answer for a few seconds
(shared/adapters/identity_cache.py, built once by shared/bootstrap.py), and a use case that changes someone's
accounts forgets them there."""

from __future__ import annotations

from typing import Protocol

from shared.domain.accounts import Identity
from shared.services.ports import Ports


class IdentityCache(Protocol):
    def get(self, uid: str) -> Identity | None: ...

    def put(self, uid: str, identity: Identity) -> None: ...

    def forget(self, uid: str) -> None:
        """This uid's accounts changed: ask PostgreSQL next time."""


def resolve(ports: Ports, identities: IdentityCache, uid: str) -> Identity:
    known = identities.get(uid)
    if known is None:
        with ports.uow(one_statement=True) as uow:
            known = uow.accounts.identity(uid)
        identities.put(uid, known)
    return known
