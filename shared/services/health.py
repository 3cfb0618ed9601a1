"""On-call's figures (shared/domain/health.py), read alone: a glance, not a ledger."""

from __future__ import annotations

from typing import Protocol

from shared.domain.health import Health
from shared.services.ports import Ports


class HealthRepository(Protocol):
    """shared/adapters/postgres/health.py"""

    def now(self) -> Health: ...


def now(ports: Ports) -> Health:
    with ports.uow(one_statement=True) as uow:
        return uow.health.now()
