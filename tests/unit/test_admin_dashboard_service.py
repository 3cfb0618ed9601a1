"""The control center's live figures on the in-memory unit of work (tests/support/fakes.py), as the service shapes
them. The figures' one statement on PostgreSQL, against seeded scenarios: tests/integration/test_dashboard.py; its
cost at 100,000 sessions: bench/admin_dashboard.py."""

from __future__ import annotations

import uuid

from shared.services import admin_dashboard
from tests.support.fake_accounts import add_client
from tests.support.fake_chat import add_session
from tests.support.fake_pairing import add_mitra
from tests.support.fakes import FakeDatabase, fake_ports, with_config


def test_the_figures_say_who_is_available_busy_and_at_capacity() -> None:
    db = FakeDatabase()
    with_config(db, max_concurrent_clients=1)
    add_mitra(db)
    full = add_mitra(db)
    add_mitra(db, online=False)
    add_session(db, str(uuid.uuid4()), client=add_client(db, "c1"), mitra=db.table("mitras")[full])

    figures = admin_dashboard.figures(fake_ports(db))

    assert figures["mitras"] == {"active": 3, "online": 2, "available": 1, "busy": 1, "at_capacity": 1}
    assert (figures["active_sessions"], figures["closing_sessions"]) == (1, 0)
    assert figures["no_mitra_rate_today"] is None, "no request has ended today"
