"""A projection held back puts nothing back (shared/domain/projection.py), on the real stack: writes of a session that
a slow delivery holds (the session document as pairing wrote it, a message as it was created) are released only
after newer changes have landed (a reroute, the end of the session, the erasure of its words by retention), through
the projector's own paths (the retry task's `project` on the outbox row, the fast path's `deliver` of the event it
holds). The Firestore documents, read with the Admin SDK and as each participant through firestore.rules, stay as the
newest state says."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import requests

from emulators.simulator import App, Watch, wait_for_one
from emulators.stack import PROJECT, LocalStack
from shared import bootstrap
from shared.adapters.postgres.database import Database
from shared.domain.events import Committed, DocumentWrite, decode
from shared.services import projector
from tests.support.delivery import push_event
from tests.support.people import Pair, send_text, uid_of

pytestmark = pytest.mark.needs_gcloud


def _mitra_id(db: Database, app: App) -> str:
    with db.transaction() as tx:
        return str(tx.scalar("SELECT id::text FROM mitras WHERE firebase_uid = :uid", {"uid": uid_of(app)}))


def _read_as(app: App, path: str) -> tuple[int, dict[str, Any]]:
    """A document as this app's user reads it, so firestore.rules decide: the status and its fields' values."""
    url = f"http://{os.environ['FIRESTORE_EMULATOR_HOST']}/v1/projects/{PROJECT}/databases/(default)/documents/{path}"
    assert app.session is not None
    response = requests.get(url, headers={"Authorization": f"Bearer {app.session.id_token}"}, timeout=10)
    fields = response.json().get("fields", {}) if response.status_code == 200 else {}
    return response.status_code, {name: _value(value) for name, value in fields.items()}


def _value(value: dict[str, Any]) -> Any:
    """A Firestore REST value as plain data (the kinds a session and a message hold)."""
    if "arrayValue" in value:
        return [_value(item) for item in value["arrayValue"].get("values", [])]
    if "mapValue" in value:
        return {name: _value(item) for name, item in value["mapValue"].get("fields", {}).items()}
    return next(iter(value.values()))


def _admin_read(path: str) -> dict[str, Any]:
    from google.cloud import firestore

    return firestore.Client(project=PROJECT).document(path).get().to_dict() or {}


def _row(db: Database, destination: str, condition: str) -> dict[str, Any]:
    """The newest outbox row written for `destination` that satisfies `condition`."""
    with db.transaction() as tx:
        row = tx.one(
            f"SELECT id, kind, destination, payload, published_at FROM outbox WHERE destination = :d AND {condition}"
            " ORDER BY id DESC LIMIT 1",
            {"d": destination},
        )
    assert row is not None, f"no outbox row for {destination} where {condition}"
    return dict(row)


def _sweep_retention(stack: LocalStack) -> None:
    """The scheduler's tick of `retention_sweep`, as Pub/Sub pushes it."""
    swept = push_event(stack, "retention_sweep")
    assert swept.status_code in (200, 204), swept.text


def test_a_held_back_projection_released_after_a_reroute_an_end_and_an_erasure_puts_nothing_back(
    stack: LocalStack,
    admin: App,
    paired: Callable[..., Pair],
    new_mitra: Callable[..., App],
    halo_db: Database,
    watches: Callable[[Watch], Watch],
    app_config: Callable[..., None],
) -> None:
    app_config(goodbye_window_s=2)
    marker = f"sentinel{uuid.uuid4().hex[:12]}"
    pair = paired("Sari", "Mitra Lama")
    session_path = f"sessions/{pair.session_id}"
    session_doc = watches(Watch.document(session_path))
    messages = watches(Watch.collection(f"{session_path}/messages"))
    words = f"rahasia {marker}"
    sent = send_text(pair.client, pair.session_id, words)
    message_path = f"{session_path}/messages/{sent['message_id']}"
    wait_for_one(messages, lambda doc: doc.get("text") == words)

    # What a slow delivery holds: pairing's write of the session (active, the first mitra among its readers), and the
    # message as it was created (its row's text is gone from the outbox once published: put back, as held in memory).
    started = _row(
        halo_db, session_path, "payload->'data'->>'status' = 'active' AND payload->'data' ? 'participant_uids'"
    )
    assert started["payload"]["data"]["participant_uids"] == [uid_of(pair.client), uid_of(pair.mitra)]
    created = _row(halo_db, message_path, "payload->>'op' = 'set'")
    create = decode(created["kind"], created["destination"], created["payload"])
    assert isinstance(create, DocumentWrite) and not create.merge and "text" not in create.data
    held_create = Committed(created["id"], replace(create, data={**create.data, "text": words}))

    # Newer changes land: a reroute, the end of the session, the erasure of its words.
    successor = new_mitra("Mitra Baru")
    rerouted = admin.post(
        "admin_sessions",
        {"action": "reroute", "session_id": pair.session_id, "mitra_id": _mitra_id(halo_db, successor)},
    )
    assert rerouted.status == 200, rerouted.body
    readers = [uid_of(pair.client), uid_of(successor)]
    wait_for_one(session_doc, lambda doc: doc.get("participant_uids") == readers)
    ended = pair.client.post("session_end", {"session_id": pair.session_id})
    assert ended.status == 200, ended.body
    wait_for_one(session_doc, lambda doc: doc.get("status") == "closed", timeout=30)  # the close timer, 2 s later
    with halo_db.transaction() as tx:
        tx.execute(
            "UPDATE sessions SET closed_at = now() - interval '400 days' WHERE id = CAST(:s AS uuid)",
            {"s": pair.session_id},
        )  # as if it had closed long ago, so retention is due (arranged: a test cannot wait out retention_days)
    _sweep_retention(stack)
    wait_for_one(messages, lambda doc: doc.get("erased") is True and "text" not in doc)
    newest = _admin_read(session_path)
    assert (newest["status"], newest["participant_uids"], newest["mitra_name"]) == ("closed", readers, "Mitra Baru")

    # Released: the session write through the retry task's path (its row pending again), the create through the fast
    # path's, both of them late.
    ports = bootstrap.ports_on(halo_db)
    with halo_db.transaction() as tx:
        tx.execute("UPDATE outbox SET published_at = NULL WHERE id = :id", {"id": started["id"]})
    released = projector.project(ports, ids=[started["id"]])
    projector.deliver(ports, [held_create])

    assert (released.published, released.failed) == (1, 0), "the late write was delivered, not failed"
    with halo_db.transaction() as tx:
        assert tx.scalar("SELECT published_at FROM outbox WHERE id = :id", {"id": started["id"]}) is not None
    document = _admin_read(session_path)
    assert document["status"] == "closed", "the older status was not restored"
    assert document["participant_uids"] == readers, "the rerouted-away mitra was not put back among the readers"
    assert (document["mitra_uid"], document["mitra_name"]) == (uid_of(successor), "Mitra Baru")
    assert document["_versions"]["status"] > started["id"]
    message = _admin_read(message_path)
    assert "text" not in message and message["erased"] is True, "the erased text was not restored"
    assert marker not in json.dumps(message, default=str)

    # As the apps read them, through firestore.rules.
    for reader in (pair.client, successor):
        status, seen = _read_as(reader, session_path)
        assert status == 200
        assert (seen["status"], seen["participant_uids"]) == ("closed", readers)
        status, seen_message = _read_as(reader, message_path)
        assert status == 200 and "text" not in seen_message and seen_message["erased"] is True
    assert _read_as(pair.mitra, session_path)[0] == 403, "the mitra rerouted away is still refused"
    assert _read_as(pair.mitra, message_path)[0] == 403
