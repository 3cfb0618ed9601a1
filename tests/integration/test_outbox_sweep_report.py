"""What the outbox sweep reports for on-call each run (infra/monitoring.tf reads it): the rows still waiting, the age
of the oldest, and crisis alerts nobody acknowledged within 5 minutes; against the migrated PostgreSQL schema."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import main
from emulators.stack import LocalStack
from shared import bootstrap
from shared.adapters.postgres.database import Database
from shared.services import admin_dashboard

pytestmark = pytest.mark.needs_gcloud


def sweep_handler() -> Any:
    """The sweep's own function, under its Pub/Sub and Functions Framework wrappers."""
    function: Any = main.outbox_sweep
    while hasattr(function, "__wrapped__"):
        function = function.__wrapped__
    return function


def test_each_sweep_logs_the_backlog_and_the_age_of_its_oldest_row(
    stack: LocalStack, db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with db.transaction() as tx:
        # Not due for an hour, so this sweep leaves it: a row that has waited 400 s and waits on.
        tx.execute(
            """INSERT INTO outbox (kind, destination, payload, created_at, next_attempt_at)
               VALUES ('pubsub', 'notify', CAST('{"data": {}, "attributes": {}}' AS jsonb), now() - interval '400 s',
                       now() + interval '1 hour')"""
        )
    monkeypatch.setattr(bootstrap, "ports", lambda: bootstrap.ports_on(db))

    with caplog.at_level(logging.INFO, logger="halo.outbox"):
        sweep_handler()(None, "message-1")

    (record,) = [record for record in caplog.records if record.getMessage() == "outbox sweep"]
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["pending"] == 1
    assert fields["published"] == 0
    assert 399 <= fields["oldest_unpublished_s"] < 460
    assert fields["unacknowledged_alerts"] == 0
    assert (fields["stuck"], fields["payments_quarantined"]) == (0, 0)
    assert record.levelno == logging.WARNING, "a row waiting over 5 minutes is worth a warning"


def test_the_dashboard_shows_on_call_what_the_sweep_reports(stack: LocalStack, db: Database) -> None:
    with db.transaction() as tx:
        tx.execute(
            """INSERT INTO outbox (kind, destination, payload, attempts, next_attempt_at)
               VALUES ('pubsub', 'no-such-topic', CAST('{"data": {}, "attributes": {}}' AS jsonb), 6,
                       now() + interval '1 hour')"""
        )
        tx.execute(
            """INSERT INTO payment_events (external_id, outcome, reason, payload)
               VALUES ('order-unknown', 'quarantined', 'unknown_transaction', CAST('{}' AS jsonb))"""
        )

    figures = admin_dashboard.figures(bootstrap.ports_on(db))

    assert figures["health"] == {
        "outbox_pending": 1,
        "oldest_unpublished_s": figures["health"]["oldest_unpublished_s"],
        "outbox_stuck": 1,
        "payments_quarantined": 1,
        "unacknowledged_alerts": 0,
    }
    assert 0 <= figures["health"]["oldest_unpublished_s"] < 60
