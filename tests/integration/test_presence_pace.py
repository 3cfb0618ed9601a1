"""Heartbeats paced to the number online, on a real PostgreSQL: the statements' pace is the domain's rule
(shared.domain.presence.pace), each mitra's lease is its own, and the sweep keeps the number online current."""

from __future__ import annotations

import json
import uuid

import pytest

from shared import bootstrap
from shared.adapters.postgres.database import Database
from shared.domain.config import AppConfig
from shared.domain.presence import Presence, pace
from shared.services import presence


def _online_mitra(db: Database, *, heard_until: str = "now() + interval '90 seconds'") -> str:
    with db.transaction() as tx:
        return str(
            tx.scalar(
                f"""INSERT INTO mitras (phone, display_name, firebase_uid, presence, last_heartbeat_at, heard_until)
                    VALUES (:phone, 'Mitra Pace', :uid, 'online', now(), {heard_until}) RETURNING id::text""",
                {"phone": f"+62817{uuid.uuid4().int % 10**8:08d}", "uid": f"mitra-{uuid.uuid4().hex}"},
            )
        )


def _settings(db: Database, **settings: int | None) -> AppConfig:
    """Set (or, with None, remove) settings in app_config; the settings as the backend reads them."""
    with db.transaction() as tx:
        for key, value in settings.items():
            if value is None:
                tx.execute("DELETE FROM app_config WHERE key = :key", {"key": key})
            else:
                tx.execute(
                    """INSERT INTO app_config (key, value) VALUES (:key, CAST(:value AS jsonb))
                       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value""",
                    {"key": key, "value": json.dumps(value)},
                )
        rows = tx.all("SELECT key, value FROM app_config")
    return AppConfig.from_rows({row["key"]: row["value"] for row in rows})


def _lease_s(db: Database, mitra_id: str) -> float:
    with db.transaction() as tx:
        return float(
            tx.scalar(
                "SELECT EXTRACT(epoch FROM heard_until - last_heartbeat_at) FROM mitras WHERE id = CAST(:id AS uuid)",
                {"id": mitra_id},
            )
        )


@pytest.mark.parametrize(
    ("online", "grace_s", "rate"),
    [
        (0, 90, 30),
        (0, 100, 30),  # a grace that is no multiple of three: whole seconds, rounded down
        (900, 90, 30),
        (901, 90, 30),
        (5_000, 90, 30),
        (5_000, 600, 30),
        (7, 10, 1),
        (40, None, None),
    ],
)
def test_a_heartbeat_is_given_the_domain_s_pace_from_the_settings_as_they_are(
    db: Database, online: int, grace_s: int | None, rate: int | None
) -> None:
    config = _settings(db, heartbeat_grace_s=grace_s, heartbeats_per_s_max=rate)  # None: the default applies
    mitra = _online_mitra(db)
    ports = bootstrap.ports_on(db)
    with ports.uow() as uow:
        uow.presence.set_online_count(online)
        uow.commit()
    expected = pace(online, config)

    assert presence.heartbeat(ports, mitra) == presence.Beat(Presence.ONLINE, next_heartbeat_s=expected.interval_s)
    assert _lease_s(db, mitra) == expected.grace_s

    presence.set_status(ports, mitra, Presence.OFFLINE)
    assert presence.heartbeat(ports, mitra) == presence.Beat(Presence.OFFLINE, next_heartbeat_s=None)
    presence.set_status(ports, mitra, Presence.ONLINE)
    assert _lease_s(db, mitra) == expected.grace_s, "going online gives the same lease"


def test_the_sweep_takes_offline_only_those_past_their_own_lease_and_counts_the_rest(db: Database) -> None:
    ports = bootstrap.ports_on(db)
    with db.transaction() as tx:
        tx.execute("UPDATE mitras SET presence = 'offline' WHERE presence = 'online'")
    long_lease = _online_mitra(db, heard_until="now() + interval '10 minutes'")  # told a long interval earlier
    short_lease = _online_mitra(db, heard_until="now() - interval '1 second'")
    fresh = _online_mitra(db)

    assert presence.sweep(ports) == 1

    with db.transaction() as tx:
        rows = tx.all(
            "SELECT id::text, presence FROM mitras WHERE id = ANY(CAST(:ids AS uuid[]))",
            {"ids": [long_lease, short_lease, fresh]},
        )
        counted = tx.scalar("SELECT online FROM presence_pace")
        reason = tx.scalar(
            "SELECT reason FROM mitra_status_logs WHERE mitra_id = CAST(:id AS uuid) ORDER BY id DESC LIMIT 1",
            {"id": short_lease},
        )
    assert {row["id"]: row["presence"] for row in rows} == {
        long_lease: "online",
        short_lease: "offline",
        fresh: "online",
    }
    assert counted == 2
    assert reason == "heartbeat_timeout"
