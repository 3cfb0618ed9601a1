"""Mitra presence: online/offline by their word, offline by silence; every transition logged."""

from __future__ import annotations

from dataclasses import dataclass

from shared.adapters.postgres.database import Tx
from shared.errors import NotFound
from shared.services import pairing, projections, settings_store
from shared.services.ports import Ports
from shared.services.projector import project_after_commit


@dataclass(frozen=True)
class Presence:
    status: str
    changed: bool


def set_status(ports: Ports, mitra_id: str, status: str) -> Presence:
    """Going online also offers the mitra every request still searching; going offline withdraws open offers.
    Running sessions are not touched either way."""
    with ports.db.transaction() as tx:
        before = tx.one(
            "SELECT presence, firebase_uid FROM mitras WHERE id = CAST(:id AS uuid) AND active FOR UPDATE",
            {"id": mitra_id},
        )
        if before is None:
            raise NotFound("no such mitra")
        tx.execute(
            """UPDATE mitras SET presence = :status, updated_at = now(),
                   last_heartbeat_at = CASE WHEN :status = 'online' THEN now() ELSE last_heartbeat_at END
               WHERE id = CAST(:id AS uuid)""",
            {"id": mitra_id, "status": status},
        )
        changed = before["presence"] != status
        if changed:
            log_presence_change(tx, [mitra_id], before["presence"], status, "manual")
        if status == "online":
            config = settings_store.load_config(tx)
            pairing.offer_searching_requests_to(tx, mitra_id, before["firebase_uid"], config)
        else:
            withdraw_open_offers(tx, [mitra_id])
    project_after_commit(ports, tx.outbox_ids)
    return Presence(status=status, changed=changed)


def heartbeat(ports: Ports, mitra_id: str) -> str:
    """Keeps an online mitra online; returns the presence, so an app swept offline knows to go online again."""
    row = ports.db.read_one(
        """UPDATE mitras SET last_heartbeat_at = now() WHERE id = CAST(:id AS uuid) AND presence = 'online'
           RETURNING presence""",
        {"id": mitra_id},
    )
    return "online" if row else "offline"


def sweep(ports: Ports) -> int:
    """Everyone silent for longer than the grace goes offline with reason `heartbeat_timeout`."""
    with ports.db.transaction() as tx:
        config = settings_store.load_config(tx)
        gone = tx.all(
            """UPDATE mitras SET presence = 'offline', updated_at = now()
               WHERE presence = 'online' AND (last_heartbeat_at IS NULL
                     OR last_heartbeat_at < now() - make_interval(secs => :grace))
               RETURNING id::text""",
            {"grace": config.heartbeat_grace_s},
        )
        ids = [row["id"] for row in gone]
        if ids:
            log_presence_change(tx, ids, "online", "offline", "heartbeat_timeout")
            withdraw_open_offers(tx, ids)
    project_after_commit(ports, tx.outbox_ids)
    return len(ids)


def log_presence_change(tx: Tx, mitra_ids: list[str], from_status: str, to_status: str, reason: str) -> None:
    """One `mitra_status_logs` row per mitra (the control center's activity logs read them)."""
    tx.execute(
        """INSERT INTO mitra_status_logs (mitra_id, from_status, to_status, reason)
           SELECT id, :from_status, :to_status, :reason FROM unnest(CAST(:ids AS uuid[])) AS id""",
        {"ids": mitra_ids, "from_status": from_status, "to_status": to_status, "reason": reason},
    )


def withdraw_open_offers(tx: Tx, mitra_ids: list[str]) -> None:
    """Mitras who went offline (or were deactivated) stop holding offers: each one's offer document goes."""
    withdrawn = tx.all(
        """UPDATE pairing_offers o SET status = 'withdrawn', responded_at = now() FROM mitras m
           WHERE o.mitra_id = ANY(CAST(:ids AS uuid[])) AND o.status = 'offered' AND m.id = o.mitra_id
           RETURNING m.firebase_uid, o.request_id::text""",
        {"ids": mitra_ids},
    )
    projections.withdraw_offer_pairs(tx, [(row["firebase_uid"], row["request_id"]) for row in withdrawn])
