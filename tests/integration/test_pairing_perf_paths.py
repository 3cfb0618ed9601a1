"""The fast paths of the blast and the accept against a real PostgreSQL: what they publish from memory is exactly
what they committed to the outbox, a failed publish leaves every row to the retry task and the sweep, and the
accept's early refusal and its decision hold up against a blast, a cancel and another accept in flight.

Firestore, Pub/Sub and Cloud Tasks are recording stand-ins here: the question is what reaches them, and when.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import Any

import pytest

from shared import bootstrap
from shared.adapters.postgres.database import Database
from shared.adapters.postgres.settings import CONFIG_COLUMN, SettingsRepository, config_from
from shared.domain.events import DocumentDelete, DocumentEvent, DocumentWrite, TopicMessage, encode
from shared.errors import Conflict, NotFound
from shared.services import pairing, projector
from shared.services.ports import Ports
from tests.support import world

pytestmark = pytest.mark.needs_gcloud

# How the accept's statements begin, to tell where it waits.
EARLY_CHECK = "SELECT o.status AS offer"
CLAIM = "SELECT m.firebase_uid"
START = "WITH request AS"


@dataclass(frozen=True)
class Op:
    """One document written, as the writer sends it."""

    path: str
    op: str
    data: Any


class RecordingWriter:
    def __init__(self, *, refuse: bool = False) -> None:
        self.ops: list[Op] = []
        self._refuse = refuse

    def apply(self, events: Sequence[DocumentEvent], versions: Sequence[int | None] | None = None) -> None:
        if self._refuse:
            raise ConnectionError("firestore is unreachable")
        for event in events:
            if isinstance(event, DocumentDelete):
                self.ops.extend(Op(path, "delete", {}) for path in event.paths)
            else:
                op = "merge" if event.merge else "set"
                self.ops.extend(Op(path, op, dict(event.data)) for path in event.paths)


class RecordingPublisher:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        self.messages.append((topic, data))
        return str(len(self.messages))

    def publish_all(self, messages: Sequence[tuple[str, bytes, dict[str, str]]]) -> list[str]:
        return [self.publish(topic, data, attributes) for topic, data, attributes in messages]


class RecordingTasks:
    def __init__(self) -> None:
        self.scheduled: list[dict[str, Any]] = []

    def schedule(
        self,
        *,
        queue: str,
        task_id: str,
        handler: str,
        payload: dict[str, Any],
        at: Any = None,
        trace: str | None = None,
    ) -> bool:
        self.scheduled.append({"queue": queue, "handler": handler, "payload": payload})
        return True

    def cancel(self, *, queue: str, task_id: str) -> bool:
        return True


def _ports(db: Database, *, refuse: bool = False) -> Ports:
    return replace(
        bootstrap.ports_on(db),
        documents=RecordingWriter(refuse=refuse),
        publisher=RecordingPublisher(),
        tasks=RecordingTasks(),
    )


def _recorded(ports: Ports) -> tuple[RecordingWriter, RecordingPublisher, RecordingTasks]:
    assert isinstance(ports.documents, RecordingWriter)
    assert isinstance(ports.publisher, RecordingPublisher)
    assert isinstance(ports.tasks, RecordingTasks)
    return ports.documents, ports.publisher, ports.tasks


def _outbox_rows(db: Database, request_id: str) -> list[dict[str, Any]]:
    """Every outbox row about this request: its offer documents, its own document and its pushes."""
    with db.transaction() as tx:
        return tx.all(
            """SELECT id, kind, destination, payload, published_at FROM outbox
               WHERE destination LIKE '%' || :r OR payload -> 'data' ->> 'request_id' = :r
                  OR payload -> 'data' -> 'data' ->> 'request_id' = :r
               ORDER BY id""",
            {"r": request_id},
        )


# What a published outbox row no longer holds: its words (shared/adapters/postgres/outbox.py WITHOUT_WORDS).
_WORDS = {"text", "body", "params", "text_by_locale"}


def _as_published(rows: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """The documents and messages these outbox rows say, in the shape the writer and the publisher receive, less the
    words a row drops once published (a document's texts, a push's body and its text's parameters: docs/privacy.md)."""
    docs = [
        (path, r["payload"]["op"], {k: v for k, v in r["payload"]["data"].items() if k not in _WORDS})
        for r in rows
        if r["kind"] == "firestore"
        for path in r["payload"].get("paths") or [r["destination"]]
    ]
    messages = [
        (r["destination"], {k: v for k, v in r["payload"]["data"].items() if k not in _WORDS})
        for r in rows
        if r["kind"] == "pubsub"
    ]
    return _sorted(docs), _sorted(messages)


def _sorted_docs(ops: list[Op]) -> list[Any]:
    """What was written, as its published row keeps it: without its words (docs/privacy.md)."""
    return _sorted([(op.path, op.op, {k: v for k, v in op.data.items() if k not in _WORDS}) for op in ops])


def _sorted_messages(publisher: RecordingPublisher) -> list[Any]:
    """What was published, as its published row keeps it: without a push's words (docs/privacy.md)."""
    return _sorted(
        [(topic, {k: v for k, v in json.loads(data).items() if k not in _WORDS}) for topic, data in publisher.messages]
    )


def _sorted(items: list[Any]) -> list[Any]:
    return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))


def _uids(db: Database, mitra_ids: list[str]) -> list[str]:
    with db.transaction() as tx:
        rows = tx.all(
            "SELECT firebase_uid FROM mitras WHERE id = ANY(CAST(:m AS uuid[])) ORDER BY firebase_uid", {"m": mitra_ids}
        )
    return [row["firebase_uid"] for row in rows]


def _waiting_on_a_lock(db: Database, statement: str, timeout: float = 10) -> None:
    """Until another session of this database waits for a lock in the statement that starts so."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.transaction() as tx:
            waiting = tx.scalar(
                """SELECT count(*) FROM pg_stat_activity
                   WHERE datname = current_database() AND wait_event_type = 'Lock'
                     AND ltrim(query, E' \n') LIKE :s || '%'""",
                {"s": statement},
            )
        if waiting:
            return
        time.sleep(0.01)
    raise AssertionError(f"no session came to wait for a lock in {statement!r}")


def _in_background(call: Callable[[], Any]) -> Future[Any]:
    pool = ThreadPoolExecutor(1)
    future = pool.submit(call)
    pool.shutdown(wait=False)
    return future


def _outcome(call: Callable[[], Any]) -> str:
    try:
        call()
    except Conflict as refused:
        return refused.code
    except NotFound:
        return "not_found"
    return "won"


# -- the blast -------------------------------------------------------------------------------------------------------


def test_a_blast_publishes_exactly_what_it_recorded_and_marks_it(db: Database) -> None:
    mitras = world.add_online_mitras(db, 3)
    request_id = world.add_searching_request(db, world.add_client(db), [])
    ports = _ports(db)

    assert pairing.blast(ports, request_id) == 3

    writer, publisher, tasks = _recorded(ports)
    rows = _outbox_rows(db, request_id)
    docs, messages = _as_published(rows)
    assert _sorted_docs(writer.ops) == docs
    assert _sorted_messages(publisher) == messages
    assert [path.split("/")[1] for path, _, _ in docs if "/offers/" in path] == _uids(db, mitras)
    assert [(path, data) for path, _, data in docs if path.startswith("pairing_requests/")] == [
        (f"pairing_requests/{request_id}", {"offered_count": 3})
    ], "the client sees how many mitras were offered"
    assert [(topic, sorted(message["recipients"])) for topic, message in messages] == [("notify", _uids(db, mitras))]
    assert all(row["published_at"] is not None for row in rows)
    assert tasks.scheduled == []


def test_a_blast_whose_publish_fails_leaves_every_row_to_the_retry_task_and_the_sweep(db: Database) -> None:
    world.add_online_mitras(db, 3)
    request_id = world.add_searching_request(db, world.add_client(db), [])
    failing = _ports(db, refuse=True)

    assert pairing.blast(failing, request_id) == 3

    rows = _outbox_rows(db, request_id)  # the three offer documents' row, the request's offered_count, the push
    assert len(rows) == 3 and all(row["published_at"] is None for row in rows)
    _, _, tasks = _recorded(failing)
    assert [(task["handler"], task["payload"]["ids"]) for task in tasks.scheduled] == [
        (projector.RETRY_HANDLER, [row["id"] for row in rows])
    ]
    retry = _ports(db)
    writer, publisher, _ = _recorded(retry)
    assert projector.project(retry, ids=tasks.scheduled[0]["payload"]["ids"]).published == 3
    assert len(writer.ops) == 4
    assert (_sorted_docs(writer.ops), _sorted_messages(publisher)) == _as_published(rows)


def test_a_blast_left_to_the_sweep_is_published_by_it(db: Database) -> None:
    world.add_online_mitras(db, 2)
    request_id = world.add_searching_request(db, world.add_client(db), [])
    pairing.blast(_ports(db, refuse=True), request_id)
    sweep = _ports(db)
    writer, publisher, _ = _recorded(sweep)

    projector.project(sweep)

    rows = _outbox_rows(db, request_id)
    assert all(row["published_at"] is not None for row in rows)
    assert (_sorted_docs(writer.ops), _sorted_messages(publisher)) == _as_published(rows)


# -- the accept ------------------------------------------------------------------------------------------------------


def test_an_accept_publishes_exactly_what_it_recorded_and_withdraws_every_offer(db: Database) -> None:
    mitras = world.add_online_mitras(db, 3)
    request_id = world.add_searching_request(db, world.add_client(db), mitras)
    ports = _ports(db)

    match = pairing.accept(ports, mitras[0], request_id)

    writer, publisher, tasks = _recorded(ports)
    rows = _outbox_rows(db, request_id) + _session_rows(db, match.session_id)
    docs, messages = _as_published(rows)
    assert _sorted_docs(writer.ops) == docs
    assert _sorted_messages(publisher) == messages
    deleted = sorted(path.split("/")[1] for path, op, _ in docs if op == "delete")
    assert deleted == _uids(db, mitras), "every offer's document goes, the winner's too"
    assert [message["data"]["type"] for _, message in messages] == ["matched"]
    timers = _timer_rows(db, match.session_id)
    assert all(row["published_at"] is not None for row in rows + timers)
    assert [task["handler"] for task in tasks.scheduled] == ["task_session_warning", "task_session_expire"]
    assert [task["payload"] for task in tasks.scheduled] == [row["payload"]["payload"] for row in timers]
    with db.transaction() as tx:
        offers = tx.all(
            "SELECT mitra_id::text, status FROM pairing_offers WHERE request_id = CAST(:r AS uuid)", {"r": request_id}
        )
    assert sorted(o["status"] for o in offers) == ["accepted", "withdrawn", "withdrawn"]


def _session_rows(db: Database, session_id: str) -> list[dict[str, Any]]:
    with db.transaction() as tx:
        return tx.all(
            "SELECT id, kind, destination, payload, published_at FROM outbox WHERE destination = :p",
            {"p": f"sessions/{session_id}"},
        )


def _timer_rows(db: Database, session_id: str) -> list[dict[str, Any]]:
    """The session's timers, as tasks recorded in the accept's outbox insert."""
    with db.transaction() as tx:
        return tx.all(
            """SELECT id, kind, destination, payload, published_at FROM outbox
               WHERE kind = 'task' AND payload -> 'payload' ->> 'session_id' = :s ORDER BY id""",
            {"s": session_id},
        )


def test_an_accept_with_no_offer_left_open_still_starts_the_session(db: Database) -> None:
    """As when the mitra's offers were withdrawn while it went offline, and the request still searches."""
    mitra = world.add_online_mitras(db, 1)
    request_id = world.add_searching_request(db, world.add_client(db), mitra)
    with db.transaction() as tx:
        tx.execute(
            "UPDATE pairing_offers SET status = 'withdrawn' WHERE request_id = CAST(:r AS uuid)", {"r": request_id}
        )
    ports = _ports(db)

    match = pairing.accept(ports, mitra[0], request_id)

    writer, publisher, _ = _recorded(ports)
    assert sorted(op.path for op in writer.ops) == sorted(
        [f"pairing_requests/{request_id}", f"sessions/{match.session_id}"]
    )
    assert len(publisher.messages) == 1


def test_an_accept_whose_publish_fails_leaves_every_row_to_the_retry_task(db: Database) -> None:
    mitras = world.add_online_mitras(db, 2)
    request_id = world.add_searching_request(db, world.add_client(db), mitras)
    failing = _ports(db, refuse=True)

    match = pairing.accept(failing, mitras[0], request_id)

    # the withdrawn offers' documents (one row), the request's and the session's documents, the client's push, and
    # the session's two timers
    rows = _outbox_rows(db, request_id) + _session_rows(db, match.session_id) + _timer_rows(db, match.session_id)
    assert len(rows) == 6 and all(row["published_at"] is None for row in rows)
    _, _, tasks = _recorded(failing)
    assert [task["handler"] for task in tasks.scheduled] == [projector.RETRY_HANDLER], "no timer before the commit"
    assert tasks.scheduled[0]["payload"]["ids"] == sorted(row["id"] for row in rows)
    retry = _ports(db)
    writer, _, retried_tasks = _recorded(retry)
    assert projector.project(retry, ids=tasks.scheduled[0]["payload"]["ids"]).published == 6
    assert len(writer.ops) == 4  # both offer documents deleted, the request and the session written
    assert [task["handler"] for task in retried_tasks.scheduled] == ["task_session_warning", "task_session_expire"]


def test_an_accept_is_refused_before_its_transaction_when_the_offer_is_settled(db: Database) -> None:
    mitras = world.add_online_mitras(db, 3)
    request_id = world.add_searching_request(db, world.add_client(db), mitras)
    cancelled = world.add_searching_request(db, world.add_client(db), mitras)
    pairing.decline(_ports(db), mitras[2], request_id)
    pairing.accept(_ports(db), mitras[0], request_id)
    with db.transaction() as tx:
        tx.execute("UPDATE pairing_requests SET status = 'cancelled' WHERE id = CAST(:r AS uuid)", {"r": cancelled})
    stranger = world.add_online_mitras(db, 1)[0]

    def accept(mitra_id: str, request_id: str) -> str:
        return _outcome(lambda: pairing.accept(_ports(db), mitra_id, request_id))

    assert accept(mitras[1], request_id) == "already_taken"
    assert accept(mitras[2], request_id) == "offer_declined"
    assert accept(mitras[1], cancelled) == "request_closed"
    assert accept(stranger, request_id) == "not_found"


def test_a_mitra_tapping_while_another_accept_decides_waits_for_it_and_loses(db: Database) -> None:
    mitras = world.add_online_mitras(db, 2)
    request_id = world.add_searching_request(db, world.add_client(db), mitras)
    with db.transaction() as deciding:  # as an accept that has matched the request and not yet committed
        deciding.execute(
            "UPDATE pairing_requests SET status = 'matched', ended_at = now() WHERE id = CAST(:r AS uuid)",
            {"r": request_id},
        )
        late = _in_background(lambda: _outcome(lambda: pairing.accept(_ports(db), mitras[1], request_id)))
        _waiting_on_a_lock(db, EARLY_CHECK)

    assert late.result(timeout=10) == "already_taken"


def test_an_accept_waits_for_a_blast_in_flight_and_withdraws_the_offers_it_made(db: Database) -> None:
    mitras = world.add_online_mitras(db, 2)
    request_id = world.add_searching_request(db, world.add_client(db), mitras[:1])
    ports = _ports(db)
    with db.transaction() as blasting:  # as a blast: the request held FOR SHARE, a new offer not yet committed
        blasting.one("SELECT 1 FROM pairing_requests WHERE id = CAST(:r AS uuid) FOR SHARE", {"r": request_id})
        blasting.execute(
            "INSERT INTO pairing_offers (request_id, mitra_id) VALUES (CAST(:r AS uuid), CAST(:m AS uuid))",
            {"r": request_id, "m": mitras[1]},
        )
        accepted = _in_background(lambda: pairing.accept(ports, mitras[0], request_id))
        _waiting_on_a_lock(db, START)

    accepted.result(timeout=10)
    with db.transaction() as tx:
        offers = tx.all(
            "SELECT mitra_id::text, status FROM pairing_offers WHERE request_id = CAST(:r AS uuid)", {"r": request_id}
        )
    assert {o["mitra_id"]: o["status"] for o in offers} == {mitras[0]: "accepted", mitras[1]: "withdrawn"}
    writer, _, _ = _recorded(ports)
    assert sorted(op.path.split("/")[1] for op in writer.ops if op.op == "delete") == _uids(db, mitras)


def test_a_blast_racing_an_accept_that_fills_a_mitra_makes_them_no_offer(db: Database) -> None:
    """The other way round: an accept of another request holds a mitra's row and fills their one slot while the blast
    decides. The blast saw them available (the accept had not committed), and its offer's foreign key waits on that
    row. Once the accept commits, the blast takes that offer back before anything is sent (no row is left, and the
    client's count leaves it out); the slot freed, it is made again. The mitra with room is offered the request as
    usual."""
    full, free = world.add_online_mitras(db, 2)
    first = world.add_searching_request(db, world.add_client(db), [full])
    second = world.add_searching_request(db, world.add_client(db), [])
    with db.transaction() as tx:
        tx.execute("UPDATE mitras SET max_concurrent_clients = 1 WHERE id = CAST(:m AS uuid)", {"m": full})
    ports = _ports(db)
    with db.transaction() as accepting:  # as an accept: the mitra's row held (_CLAIM), its session not yet committed
        accepting.one("SELECT 1 FROM mitras WHERE id = CAST(:m AS uuid) FOR UPDATE", {"m": full})
        accepting.execute(
            """INSERT INTO sessions (request_id, client_id, mitra_id, kind, ends_at)
               SELECT id, client_id, CAST(:m AS uuid), kind, now() + interval '15 minutes'
               FROM pairing_requests WHERE id = CAST(:r AS uuid)""",
            {"m": full, "r": first},
        )
        blasted = _in_background(lambda: pairing.blast(ports, second))
        _waiting_on_a_lock(db, "WITH added AS")

    assert blasted.result(timeout=10) == 1
    with db.transaction() as tx:
        offers = tx.all(
            "SELECT mitra_id::text, status FROM pairing_offers WHERE request_id = CAST(:r AS uuid)", {"r": second}
        )
    assert {o["mitra_id"]: o["status"] for o in offers} == {free: "offered"}, "never offered: no row for the full one"
    writer, publisher, _ = _recorded(ports)
    assert [op.path.split("/")[1] for op in writer.ops if "/offers/" in op.path] == _uids(db, [free])
    docs, _ = _as_published(_outbox_rows(db, second))
    assert [data for path, _, data in docs if path.startswith("pairing_requests/")] == [{"offered_count": 1}], (
        "the client is told of the one mitra offered, not of the one taken back"
    )
    assert [json.loads(data)["recipients"] for topic, data in publisher.messages if topic == "notify"] == [
        _uids(db, [free])
    ]

    with db.transaction() as tx:
        tx.execute("UPDATE sessions SET status = 'closed' WHERE request_id = CAST(:r AS uuid)", {"r": first})
    assert pairing.offer_freed_slot(ports, full) > 0
    with db.transaction() as tx:
        again = tx.scalar(
            "SELECT status FROM pairing_offers WHERE request_id = CAST(:r AS uuid) AND mitra_id = CAST(:m AS uuid)",
            {"r": second, "m": full},
        )
    assert again == "offered", "the slot freed: the request still searching is offered to them again"


def test_a_cancel_committed_while_an_accept_starts_the_session_leaves_no_session(db: Database) -> None:
    mitra = world.add_online_mitras(db, 1)
    request_id = world.add_searching_request(db, world.add_client(db), mitra)
    with ExitStack() as cancelling:
        with db.transaction() as holding:  # the mitra's row held, so the accept stops after its early check
            holding.one("SELECT 1 FROM mitras WHERE id = CAST(:m AS uuid) FOR UPDATE", {"m": mitra[0]})
            accepted = _in_background(lambda: _outcome(lambda: pairing.accept(_ports(db), mitra[0], request_id)))
            _waiting_on_a_lock(db, CLAIM)
            cancel = cancelling.enter_context(db.transaction())
            cancel.execute(
                "UPDATE pairing_requests SET status = 'cancelled', ended_at = now() WHERE id = CAST(:r AS uuid)",
                {"r": request_id},
            )
        _waiting_on_a_lock(db, START)  # the accept has inserted its session and waits for the cancel to commit

    assert accepted.result(timeout=10) == "request_closed"
    with db.transaction() as tx:
        sessions = tx.scalar("SELECT count(*) FROM sessions WHERE request_id = CAST(:r AS uuid)", {"r": request_id})
        trials = tx.scalar("SELECT count(*) FROM free_trials")
    assert (sessions, trials) == (0, 0)


@pytest.mark.parametrize("racers", [2, 8])
def test_mitras_accepting_at_once_each_learn_who_won(db: Database, racers: int) -> None:
    mitras = world.add_online_mitras(db, racers)
    request_id = world.add_searching_request(db, world.add_client(db), mitras)
    start = threading.Barrier(racers)

    def accept(mitra_id: str) -> str:
        start.wait()
        return _outcome(lambda: pairing.accept(_ports(db), mitra_id, request_id))

    with ThreadPoolExecutor(racers) as pool:
        outcomes = sorted(pool.map(accept, mitras))

    assert outcomes == ["already_taken"] * (racers - 1) + ["won"]


# -- the settings and the outbox batch -------------------------------------------------------------------------------


def test_the_settings_carried_by_a_statement_are_the_settings(db: Database) -> None:
    """The accept's claim carries the settings (CONFIG_COLUMN) instead of loading them in a statement of their own."""
    with db.transaction() as tx:
        settings = SettingsRepository(tx)
        tx.execute("UPDATE app_config SET value = '7' WHERE key = 'max_concurrent_clients'")
        tx.execute("DELETE FROM app_config WHERE key = 'free_trial_minutes'")
        carried = tx.scalar(f"SELECT {CONFIG_COLUMN}")
        assert config_from(carried) == settings.load()
        assert config_from(carried).max_concurrent_clients == 7
        tx.execute("DELETE FROM app_config")
        assert config_from(tx.scalar(f"SELECT {CONFIG_COLUMN}")) == settings.load()


def test_events_added_together_come_back_each_beside_its_own_id(db: Database) -> None:
    events = [
        DocumentWrite.at(f"checks/{n}", {"n": n}, merge=bool(n % 2)) if n % 3 else TopicMessage(f"topic-{n}", {"n": n})
        for n in range(40)
    ]
    with bootstrap.ports_on(db).uow() as uow:
        uow.outbox.add(*events)
        committed = uow.commit()
    with db.transaction() as tx:
        stored = {row["id"]: row for row in tx.all("SELECT id, kind, destination, payload FROM outbox")}

    assert len(committed) == 40 == len(stored)
    assert [row.event for row in committed] == events
    for row in committed:
        found = stored[row.outbox_id]
        written = encode(row.event)
        assert (found["kind"], found["destination"], found["payload"]) == (
            written.kind,
            written.destination,
            written.payload,
        )
