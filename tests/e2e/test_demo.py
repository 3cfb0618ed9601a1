"""`make demo` on a stack that has been used: a seeded mitra kept at capacity by sessions from earlier use gets no
offer, as the pairing rule says, and the demo plays on with the other mitras (README "See it work")."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

from emulators import demo
from emulators.simulator import App
from emulators.stack import LocalStack
from tests.support.people import Stage, ok, pair_up

pytestmark = pytest.mark.needs_gcloud


def test_the_demo_plays_on_when_a_seeded_mitra_is_at_capacity(
    stack: LocalStack,
    stage: Stage,
    new_client: Callable[..., App],
    app_config: Callable[..., None],
    quiet_world: None,
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
        ok(earlier.client.post("session_end", {"session_id": earlier.session_id}), "session_end")

    assert outcome == 0, told
    assert f"{anisa_name}" in told and "gets no offer this run" in told
    assert "pairing_accept → 200" in told
    assert "closed" in told
