"""The audit log reader and the hourly read counts, on the in-memory unit of work. The same on PostgreSQL (with the
append-only triggers): tests/e2e/test_audit_log.py."""

from __future__ import annotations

from datetime import date

import pytest

from shared.errors import InvalidRequest
from shared.services import admin_audit
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports


@pytest.fixture
def db() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    return fake_ports(db)


def _read(ports: FakePorts, admin: str, function: str, **query: object) -> None:
    with ports.uow(one_statement=True) as uow:
        uow.audit.count_read(actor_uid=admin, actor_role="admin", function=function, query=query)


def _change(ports: FakePorts, admin: str, action: str, target: str) -> None:
    with ports.uow() as uow:
        uow.audit.record(actor_uid=admin, actor_role="admin", action=action, target=target, old=None, new={"x": 1})
        uow.commit()


def _list(ports: FakePorts, **filters: object) -> list[object]:
    asked = {"actor_uid": None, "action": None, "target": None, "first": None, "last": None, "cursor": None}
    asked.update(filters)
    limit = int(asked.pop("limit", 50))  # type: ignore[call-overload]
    entries, _ = admin_audit.list_entries(ports, limit=limit, **asked)  # type: ignore[arg-type]
    return list(entries)


def test_a_poll_every_few_seconds_is_one_entry_per_hour_counting_the_reads(ports: FakePorts, db: FakeDatabase) -> None:
    for _ in range(3):
        _read(ports, "a1", "admin_dashboard")
        db.tick(5)
    _read(ports, "a1", "admin_users", q="budi")
    _read(ports, "a1", "admin_users", q="budi", cursor="page-2")
    _read(ports, "a1", "admin_users", q="sari")
    db.tick(3600)
    _read(ports, "a1", "admin_dashboard")

    entries = _list(ports, action="admin_dashboard.read")
    users = _list(ports, action="admin_users.read")

    assert [e.reads for e in entries] == [1, 3], "a new hour, a new entry"
    (searches,) = users
    assert searches.reads == 3
    assert searches.new == [{"q": "budi"}, {"q": "sari"}], "a page's cursor is the same question"


def test_changes_and_reads_are_filtered_and_paged_newest_first(ports: FakePorts, db: FakeDatabase) -> None:
    for n in range(5):
        _change(ports, "a1" if n % 2 == 0 else "a2", "session.end", f"s{n}")
        db.tick(60)
    _read(ports, "a2", "admin_audit", action="session.end")

    by_a2 = _list(ports, actor_uid="a2")
    one = _list(ports, target="s3")
    first_page, cursor = admin_audit.list_entries(
        ports, actor_uid=None, action=None, target=None, first=None, last=None, cursor=None, limit=4
    )
    rest, end = admin_audit.list_entries(
        ports, actor_uid=None, action=None, target=None, first=None, last=None, cursor=cursor, limit=4
    )

    assert [e.action for e in by_a2] == ["admin_audit.read", "session.end", "session.end"]
    assert [e.target for e in one] == ["s3"]
    assert [e.target for e in first_page] == ["admin_audit", "s4", "s3", "s2"]
    assert [e.target for e in rest] == ["s1", "s0"] and end is None


def test_a_range_that_ends_before_it_starts_is_refused(ports: FakePorts, db: FakeDatabase) -> None:
    with pytest.raises(InvalidRequest) as refused:
        _list(ports, first=date(2026, 1, 5), last=date(2026, 1, 4))
    assert refused.value.details["fields"] == [{"field": "to_date", "problem": "too early"}]
