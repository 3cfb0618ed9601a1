"""`make demo` on a stack that has been used: a seeded mitra kept at capacity by a session left open by earlier use
has it ended by the admin first (`admin_session_end`), and the demo plays on with every mitra, its own step showing an
admin ending a session with the unused time credited back (README "See it work")."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

from emulators import demo
from emulators.simulator import App
from emulators.stack import LocalStack
from shared.adapters.postgres.database import Database
from tests.support.people import Stage, ok, pair_up

pytestmark = pytest.mark.needs_gcloud


def test_the_demo_ends_a_leftover_session_and_shows_an_admin_ending_one(
    stack: LocalStack,
    stage: Stage,
    new_client: Callable[..., App],
    app_config: Callable[..., None],
    quiet_world: None,
    halo_db: Database,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app_config(max_concurrent_clients=1)
    anisa_phone, anisa_name = demo.MITRAS[0]
    anisa = App(stage.functions_url, stage.auth.sign_in_with_phone(anisa_phone))
    ok(anisa.post("mitra_login"), "mitra_login")
    assert anisa.session is not None
    anisa.session.refresh()
    ok(anisa.post("mitra_set_status", {"status": "online"}), "mitra_set_status")
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}  # demo.main sets its own
    earlier = pair_up(new_client("Pengguna Lama"), anisa, {"free_trial": True})
    try:
        outcome = demo.main(
            [
                "--functions-url",
                stack.functions_url,
                "--auth-url",
                f"http://127.0.0.1:{stack.ports.auth}",
                "--firestore-host",
                os.environ["FIRESTORE_EMULATOR_HOST"],
                "--postgres-port",
                str(stack.ports.postgres),
            ]
        )
        told = capsys.readouterr().out
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        earlier.client.post("session_end", {"session_id": earlier.session_id})  # should the demo have failed early

    assert outcome == 0, told
    assert "1 session(s) left open by earlier runs closed" in told
    assert "gets no offer this run" not in told, f"{anisa_name} has room again"
    assert "pairing_accept → 200" in told
    assert "admin_session_end (reason given, no goodbye window, credit_unused) → closed" in told
    assert "listener: closed, close_reason 'admin'" in told
    assert "pricing_quote: credited back" in told
    assert "'session.end'" in told
    assert "session_feedback: rated 5/5 with a comment" in told
    assert "admin_feedback: " in told and "sees no individual rating" in told
    with halo_db.transaction() as tx:
        leftover = tx.one(
            """SELECT s.status, c.reason FROM sessions s JOIN session_closures c ON c.session_id = s.id
               WHERE s.id = CAST(:id AS uuid)""",
            {"id": earlier.session_id},
        )
    assert leftover == {"status": "closed", "reason": "admin"}
