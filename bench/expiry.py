"""Session expiry: the backend-authoritative timer, end to end.

Ten paid sessions of 2-4 s (a short tier, bought through `billing_checkout` and paid on the Xendit stand-in, then
paired through the real flow). The Cloud Tasks emulator fires `task_session_expire` at `ends_at`; the session's
Firestore document flips to `closing`. Reported: |closing_at - ends_at| (the server's decision) and the moment a
listener saw the flip, both against `ends_at`.
Target (docs/targets.md): session expiry within 1 s of `ends_at`.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from bench import _stack
from bench._stack import p50, verdict
from functions.manifest import BY_NAME
from tests.support import world

DURATIONS_S = (2, 3, 4, 2, 3, 4, 2, 3, 4, 3)
TARGET_S = 1.0


class Flip:
    """Listens to one session document and notes the wall-clock moment it first shows `closing` (or later)."""

    def __init__(self, client: Any, session_id: str) -> None:
        self.session_id = session_id
        self.seen_at: float | None = None
        self.doc: dict[str, Any] = {}
        self._event = threading.Event()
        self._watch = client.document(f"sessions/{session_id}").on_snapshot(self._on_snapshot)

    def _on_snapshot(self, docs: Any, _changes: Any, _read_time: Any) -> None:
        now = time.time()
        for doc in docs:
            data = doc.to_dict() or {}
            if data.get("status") in ("closing", "closed") and self.seen_at is None:
                self.seen_at, self.doc = now, data
                self._event.set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)

    def close(self) -> None:
        self._watch.unsubscribe()


def run() -> str:
    skipped = _stack.skip_without_gcloud()
    if skipped:
        return skipped
    if "task_session_expire" not in BY_NAME:
        return "skipped: lifecycle not built (no task_session_expire in functions/manifest.py)"
    if not {"billing_checkout", "xendit_webhook"} <= set(BY_NAME):
        return "skipped: billing not built (short paid tiers need billing_checkout and xendit_webhook)"
    from google.cloud import firestore

    _stack.stack()
    _stack.quiet_world()
    client = firestore.Client(project="demo-halo")
    tiers = {duration: _stack.add_tier(duration) for duration in sorted(set(DURATIONS_S))}
    flips: list[tuple[int, Flip]] = []
    mitras: list[str] = []
    try:
        for duration in DURATIONS_S:
            pair = _stack.paired(tier_id=tiers[duration])
            mitras.append(_stack.account_id(pair.mitra))
            flips.append((duration, Flip(client, pair.session_id)))
        deadline = time.monotonic() + max(DURATIONS_S) + 15
        for _, flip in flips:
            flip.wait(max(0.0, deadline - time.monotonic()))
    finally:
        for _, flip in flips:
            flip.close()
        client.close()
        _stack.retire_tiers(list(tiers.values()))
        world.set_offline(_stack.halo_db(), mitras)

    rows = []
    decided: list[float] = []
    observed: list[float] = []
    for duration, flip in flips:
        if flip.seen_at is None:
            rows.append(f"  {flip.session_id}  {duration} s   never flipped to closing")
            continue
        ends_at: datetime = flip.doc["ends_at"]
        closing_at: datetime = flip.doc["closing_at"]
        server_s = (closing_at - ends_at).total_seconds()
        seen_s = flip.seen_at - ends_at.timestamp()
        decided.append(abs(server_s))
        observed.append(seen_s)
        rows.append(
            f"  {flip.session_id}  {duration:>1} s  {server_s * 1000:>+21.0f}  {seen_s * 1000:>+18.0f}  "
            f"{flip.doc.get('close_reason', '')}"
        )
    flipped = len(decided)
    worst = max(decided) if decided else float("inf")
    lines = [
        f"{len(flips)} paid sessions of {min(DURATIONS_S)}-{max(DURATIONS_S)} s (short tiers, checkout + Xendit "
        "stand-in payment, real pairing); Cloud Tasks emulator → task_session_expire → Firestore",
        f"  {'session':<36}  {'len':>3}  {'closing_at-ends_at ms':>21}  {'listener saw it ms':>18}",
        *rows,
    ]
    if decided:
        lines.append(
            f"|closing_at - ends_at|: p50 {p50(decided) * 1000:.0f} ms, max {worst * 1000:.0f} ms; listener saw the "
            f"flip p50 {p50(observed) * 1000:+.0f} ms, max {max(observed) * 1000:+.0f} ms after ends_at"
        )
    lines.append(
        f"expired within {TARGET_S:g} s of ends_at: {sum(1 for d in decided if d <= TARGET_S)}/{len(flips)} "
        f"(flipped {flipped}/{len(flips)})  (target ≤ {TARGET_S:g} s)  "
        f"{verdict(flipped == len(flips) and worst <= TARGET_S)}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
