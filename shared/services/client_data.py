"""A client's data on request: everything we hold about them as JSON, or their deletion.

Deletion anonymises the profile (name "Deleted", no phone or email, the Firebase user unlinked and its tokens
revoked) and erases the texts of every message of their sessions, in PostgreSQL and Firestore. The sessions,
transactions and the financial ledger stay: they are the business's records, and they no longer name anyone.
"""

from __future__ import annotations

from typing import Any

from shared.adapters.postgres.database import Database, Row, Tx
from shared.domain import accounts
from shared.errors import Conflict, NotFound
from shared.services import audit, identity, projections, settings_store
from shared.services.ports import IdentityProvider, Ports
from shared.services.projector import project_after_commit

DELETED_NAME = "Deleted"


def export(db: Database, client_id: str) -> dict[str, Any]:
    with db.transaction() as tx:
        # One snapshot for the four reads, so the export is consistent with itself.
        tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return _export(tx, client_id)


def delete(ports: Ports, idp: IdentityProvider, admin_uid: str, client_id: str) -> dict[str, Any]:
    """Idempotent: deleting a deleted client changes nothing. Refused (409 `client_busy`) while the client has an
    open session or search, which would otherwise go on without them."""
    with ports.db.transaction() as tx:
        client = tx.one(
            """SELECT firebase_uid, deleted_at, anonymous, alias_number FROM clients WHERE id = CAST(:id AS uuid)
               FOR UPDATE""",
            {"id": client_id},
        )
        if client is None:
            raise NotFound("no such client")
        if client["deleted_at"] is None:
            _refuse_if_busy(tx, client_id)
            erased = _anonymise(tx, client_id, client)
            audit.record(tx, actor_uid=admin_uid, actor_role="admin", action="client.delete", target=client_id,
                         old={"deleted": False}, new={"deleted": True, "messages_erased": erased})  # fmt: skip
            # Before the commit: if revoking fails the deletion rolls back and can be retried, whereas after it the
            # uid would be gone and its tokens would stay valid.
            if client["firebase_uid"]:
                idp.revoke_sessions(client["firebase_uid"])
                idp.set_role(client["firebase_uid"], None)
        exported = _export(tx, client_id)
    project_after_commit(ports, tx.outbox_ids)
    if client["firebase_uid"]:
        identity.forget(client["firebase_uid"])
    return exported


def _refuse_if_busy(tx: Tx, client_id: str) -> None:
    if tx.scalar(
        """SELECT EXISTS (SELECT 1 FROM sessions WHERE client_id = CAST(:id AS uuid) AND status <> 'closed')
               OR EXISTS (SELECT 1 FROM pairing_requests
                          WHERE client_id = CAST(:id AS uuid) AND status = 'searching')""",
        {"id": client_id},
    ):
        raise Conflict("the client has an open session or search; end it first", code="client_busy")


def _anonymise(tx: Tx, client_id: str, client: Row) -> int:
    """Returns how many message texts were erased."""
    tx.execute(
        """UPDATE clients SET display_name = :name, phone = NULL, email = NULL, firebase_uid = NULL,
               deleted_at = now(), updated_at = now()
           WHERE id = CAST(:id AS uuid)""",
        {"name": DELETED_NAME, "id": client_id},
    )
    # A push token addresses the person's phone.
    tx.execute("DELETE FROM devices WHERE firebase_uid = :uid", {"uid": client["firebase_uid"]})
    erased = tx.all(
        """UPDATE chat_messages m SET text = NULL FROM sessions s
           WHERE s.id = m.session_id AND s.client_id = CAST(:id AS uuid) AND m.text IS NOT NULL
           RETURNING m.id::text AS message_id, m.session_id::text""",
        {"id": client_id},
    )
    projections.erased_messages(tx, erased)
    mode = settings_store.load_config(tx).anonymity_mode
    shown_as = accounts.name_for_mitra(display_name=DELETED_NAME, anonymous=client["anonymous"],
                                       alias_number=client["alias_number"], mode=mode)  # fmt: skip
    sessions = tx.all(
        """SELECT s.id::text AS session_id, m.firebase_uid AS mitra_uid FROM sessions s
           JOIN mitras m ON m.id = s.mitra_id WHERE s.client_id = CAST(:id AS uuid)""",
        {"id": client_id},
    )
    projections.forget_client(
        tx,
        sessions=[{**session, "client_name": shown_as} for session in sessions],
        request_ids=_ids(tx, "SELECT id::text FROM pairing_requests WHERE client_id = CAST(:id AS uuid)", client_id),
        transaction_ids=_ids(
            tx, "SELECT id::text FROM customer_transactions WHERE client_id = CAST(:id AS uuid)", client_id
        ),
    )
    return len(erased)


def _ids(tx: Tx, sql: str, client_id: str) -> list[str]:
    return [row["id"] for row in tx.all(sql, {"id": client_id})]


def _export(tx: Tx, client_id: str) -> dict[str, Any]:
    profile = tx.one(
        """SELECT id::text AS client_id, display_name, anonymous, alias_number, phone, email, created_at, suspended_at,
                  deleted_at, now() AS exported_at
           FROM clients WHERE id = CAST(:id AS uuid)""",
        {"id": client_id},
    )
    if profile is None:
        raise NotFound("no such client")
    sessions = tx.all(
        """SELECT s.id::text AS session_id, s.kind, s.status, m.display_name AS mitra_name, s.started_at, s.ends_at,
                  s.closed_at
           FROM sessions s JOIN mitras m ON m.id = s.mitra_id WHERE s.client_id = CAST(:id AS uuid)
           ORDER BY s.started_at, s.id""",
        {"id": client_id},
    )
    messages = tx.all(
        """SELECT m.id::text AS message_id, m.session_id::text, m.seq, m.kind, m.sender_role, m.text, m.created_at
           FROM chat_messages m JOIN sessions s ON s.id = m.session_id WHERE s.client_id = CAST(:id AS uuid)
           ORDER BY s.started_at, s.id, m.seq""",
        {"id": client_id},
    )
    transactions = tx.all(
        """SELECT id::text AS transaction_id, purpose, tier_id, duration_s, amount, currency, status, payment_method,
                  payment_channel, created_at, paid_at, expired_at
           FROM customer_transactions WHERE client_id = CAST(:id AS uuid) ORDER BY created_at, id""",
        {"id": client_id},
    )
    exported_at = profile.pop("exported_at")
    profile["alias"] = accounts.alias(profile.pop("alias_number"))
    return {"exported_at": exported_at, "profile": profile, "sessions": sessions, "messages": messages,
            "transactions": transactions}  # fmt: skip
