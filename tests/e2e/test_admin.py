"""The control center end to end: the seeded admin calls every admin function through the gateway; apps and
Firestore show the effects as the real apps would see them."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from emulators.simulator import App, AuthEmulator, Watch
from emulators.stack import PROJECT, LocalStack
from shared.adapters.postgres.database import Database
from shared.domain.config import AppConfig
from tests.support.people import Pair, uid_of

ADMIN_FUNCTIONS = ["admin_dashboard", "admin_mitras", "admin_users", "admin_config", "admin_sessions"]


def _account_id(db: Database, table: str, app: App) -> str:
    with db.transaction() as tx:
        return str(tx.scalar(f"SELECT id::text FROM {table} WHERE firebase_uid = :uid", {"uid": uid_of(app)}))


def _audited(db: Database, action: str, target: str) -> list[dict[str, Any]]:
    with db.transaction() as tx:
        return tx.all(
            "SELECT actor_uid, actor_role, old_value, new_value FROM audit_log WHERE action = :a AND target = :t"
            " ORDER BY id",
            {"a": action, "t": target},
        )


def _fields(reply: Any) -> list[str]:
    assert (reply.status, reply.error_code) == (400, "invalid_request"), reply.body
    return [field["field"] for field in reply.body["error"]["fields"]]


# -- who may call ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("function", [*ADMIN_FUNCTIONS, "admin_mitra_logs"])
def test_only_admins_may_call_the_control_center(
    function: str, new_client: Callable[..., App], seeded_mitra: Callable[[int], App], anonymous_app: App
) -> None:
    query = {"mitra_id": str(uuid.uuid4())} if function == "admin_mitra_logs" else {}

    as_client = new_client().get(function, **query)
    as_mitra = seeded_mitra(1).get(function, **query)
    as_nobody = anonymous_app.get(function, **query)

    assert (as_client.status, as_client.error_code) == (403, "forbidden")
    assert (as_mitra.status, as_mitra.error_code) == (403, "forbidden")
    assert as_nobody.status == 401


# -- admin_dashboard -------------------------------------------------------------------------------------------------


@pytest.mark.needs_gcloud
def test_the_dashboard_shows_the_live_operation(
    admin: App, paired: Callable[..., Pair], new_mitra: Callable[..., App]
) -> None:
    paired()
    new_mitra("Mitra Siaga")

    figures = admin.get("admin_dashboard")

    assert figures.status == 200, figures.body
    assert figures.body["mitras"]["online"] == 2, "quiet_world left only this test's mitras online"
    assert figures.body["mitras"]["available"] == 2
    assert figures.body["mitras"]["busy"] >= 1
    assert figures.body["active_sessions"] >= 1
    assert figures.body["sessions_today"] >= 1
    assert figures.body["requests_today"]["matched"] >= 1
    assert figures.body["median_wait_s_today"] is not None
    assert figures.body["revenue_today"]["currency"] == "IDR"


# -- admin_mitras ----------------------------------------------------------------------------------------------------


def _phone() -> str:
    return f"+62816{uuid.uuid4().int % 10**8:08d}"


def test_mitras_are_created_found_and_renamed(admin: App, halo_db: Database) -> None:
    phone = _phone()

    created = admin.post("admin_mitras", {"action": "create", "phone": phone, "display_name": "Mitra Baru"})
    again = admin.post("admin_mitras", {"action": "create", "phone": phone, "display_name": "Mitra Lagi"})

    assert created.status == 200, created.body
    mitra = created.body["mitras"][0]
    assert (mitra["phone"], mitra["active"], mitra["presence"], mitra["signed_in"]) == (phone, True, "offline", False)
    assert (again.status, again.error_code) == (409, "phone_taken")
    found = admin.get("admin_mitras", q=phone[-8:])
    assert [m["mitra_id"] for m in found.body["mitras"]] == [mitra["mitra_id"]]
    renamed = admin.post(
        "admin_mitras", {"action": "update", "mitra_id": mitra["mitra_id"], "display_name": "Mitra Dua"}
    )
    assert renamed.body["mitras"][0]["display_name"] == "Mitra Dua"
    assert [row["new_value"] for row in _audited(halo_db, "mitra.create", mitra["mitra_id"])] == [
        {"phone": phone, "display_name": "Mitra Baru"}
    ]
    update = _audited(halo_db, "mitra.update", mitra["mitra_id"])
    assert [(r["old_value"], r["new_value"]) for r in update] == [
        ({"display_name": "Mitra Baru"}, {"display_name": "Mitra Dua"})
    ]
    assert update[0]["actor_role"] == "admin"


def test_the_roster_filters_and_pages(admin: App, new_mitra: Callable[..., App], quiet_world: None) -> None:
    marker = uuid.uuid4().hex[:6]
    for n in range(3):
        new_mitra(f"Roster {marker} {n}")

    first = admin.get("admin_mitras", q=f"roster {marker}", limit=2)
    second = admin.get("admin_mitras", q=f"roster {marker}", limit=2, cursor=first.body["next_cursor"])
    online = admin.get("admin_mitras", presence="online", limit=200)

    assert [m["display_name"] for m in first.body["mitras"]] == [f"Roster {marker} 0", f"Roster {marker} 1"]
    assert [m["display_name"] for m in second.body["mitras"]] == [f"Roster {marker} 2"]
    assert second.body["next_cursor"] is None
    assert {m["display_name"] for m in online.body["mitras"]} == {f"Roster {marker} {n}" for n in range(3)}
    assert admin.get("admin_mitras", cursor="garbage").status == 400


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "create", "phone": "081234567890", "display_name": "Mitra"}, "create.phone"),
        ({"action": "create", "phone": "+6281234567890", "display_name": " "}, "create.display_name"),
        ({"action": "update", "mitra_id": "not-a-uuid", "display_name": "Mitra"}, "update.mitra_id"),
        ({"action": "retire", "mitra_id": str(uuid.uuid4())}, "body"),
        ({"mitra_id": str(uuid.uuid4())}, "body"),
    ],
)
def test_bad_mitra_changes_are_400_with_the_field(admin: App, body: dict[str, Any], field: str) -> None:
    assert field in _fields(admin.post("admin_mitras", body))


def test_an_unknown_field_in_a_mitra_change_is_ignored(admin: App) -> None:
    reply = admin.post("admin_mitras", {"action": "deactivate", "mitra_id": str(uuid.uuid4()), "why": "x"})

    assert (reply.status, reply.error_code) == (404, "not_found"), "the change was read; only the mitra is unknown"


def test_an_unknown_mitra_is_404(admin: App) -> None:
    reply = admin.post("admin_mitras", {"action": "deactivate", "mitra_id": str(uuid.uuid4())})

    assert (reply.status, reply.error_code) == (404, "not_found")


@pytest.mark.needs_gcloud
def test_deactivation_takes_a_mitra_out_at_once(
    admin: App,
    auth: AuthEmulator,
    stack: LocalStack,
    new_mitra: Callable[..., App],
    new_client: Callable[..., App],
    halo_db: Database,
    watches: Callable[[Watch], Watch],
    quiet_world: None,
) -> None:
    mitra = new_mitra("Mitra Pamit")
    mitra_id = _account_id(halo_db, "mitras", mitra)
    offers = watches(Watch.collection(f"mitras/{uid_of(mitra)}/offers"))
    request = new_client().post("pairing_request", {"free_trial": True})
    offers.wait_for(lambda docs: len(docs) == 1)

    reply = admin.post("admin_mitras", {"action": "deactivate", "mitra_id": mitra_id})

    assert reply.status == 200, reply.body
    assert (reply.body["mitras"][0]["active"], reply.body["mitras"][0]["presence"]) == (False, "offline")
    offers.wait_for(lambda docs: not docs)
    with halo_db.transaction() as tx:
        offer = tx.scalar(
            "SELECT status FROM pairing_offers WHERE request_id = CAST(:r AS uuid) AND mitra_id = CAST(:m AS uuid)",
            {"r": request.body["request_id"], "m": mitra_id},
        )
        reasons = tx.all(
            "SELECT to_status, reason FROM mitra_status_logs WHERE mitra_id = CAST(:m AS uuid) ORDER BY id",
            {"m": mitra_id},
        )
        phone = tx.scalar("SELECT phone FROM mitras WHERE id = CAST(:m AS uuid)", {"m": mitra_id})
    assert offer == "withdrawn"
    assert reasons[-1] == {"to_status": "offline", "reason": "deactivated"}
    assert mitra.post("mitra_set_status", {"status": "online"}).status in (401, 403), "its token no longer serves"
    # Revocation has one-second granularity: a token minted in the same second still verifies, and is then refused.
    assert mitra.post("mitra_login").status in (401, 403)
    time.sleep(1.1)  # a sign-in in the very second of the revocation is still refused
    fresh = App(stack.functions_url, auth.sign_in_with_phone(phone))
    refused = fresh.post("mitra_login")
    assert (refused.status, refused.error_code) == (403, "not_a_mitra")
    assert _audited(halo_db, "mitra.deactivate", mitra_id)[0]["new_value"]["active"] is False

    back = admin.post("admin_mitras", {"action": "reactivate", "mitra_id": mitra_id})

    assert back.body["mitras"][0]["active"] is True
    assert App(stack.functions_url, auth.sign_in_with_phone(phone)).post("mitra_login").status == 200


# -- admin_users -----------------------------------------------------------------------------------------------------


@pytest.mark.needs_gcloud
def test_suspension_refuses_the_client_and_cancels_its_search(
    admin: App,
    auth: AuthEmulator,
    new_mitra: Callable[..., App],
    new_client: Callable[..., App],
    halo_db: Database,
    watches: Callable[[Watch], Watch],
    quiet_world: None,
) -> None:
    mitra = new_mitra()
    client = new_client("Klien Nakal")
    client_id = _account_id(halo_db, "clients", client)
    offers = watches(Watch.collection(f"mitras/{uid_of(mitra)}/offers"))
    request = client.post("pairing_request", {"free_trial": True})
    request_doc = watches(Watch.document(f"pairing_requests/{request.body['request_id']}"))
    offers.wait_for(lambda docs: len(docs) == 1)

    reply = admin.post("admin_users", {"action": "suspend", "client_id": client_id, "reason": "abusive messages"})

    assert reply.status == 200, reply.body
    assert reply.body["clients"][0]["suspended_at"] is not None
    request_doc.wait_for(lambda docs: any(doc.get("status") == "cancelled" for doc in docs.values()))
    offers.wait_for(lambda docs: not docs)
    refused = client.get("pricing_quote")
    assert (refused.status, refused.error_code) == (403, "suspended")
    listed = admin.get("admin_users", suspended="true", q="Klien Nakal")
    assert client_id in [c["client_id"] for c in listed.body["clients"]]
    audit = _audited(halo_db, "client.suspend", client_id)
    assert audit[0]["new_value"] == {"suspended": True, "reason": "abusive messages"}

    admin.post("admin_users", {"action": "unsuspend", "client_id": client_id})

    assert client.get("pricing_quote").status in (401, 403), "suspension signed the client out everywhere"
    assert client.session is not None
    (google_sub,) = client.session.claims["firebase"]["identities"]["google.com"]
    with halo_db.transaction() as tx:
        email = str(tx.scalar("SELECT email FROM clients WHERE id = CAST(:c AS uuid)", {"c": client_id}))
    time.sleep(1.1)  # a sign-in in the very second of the revocation is still refused
    again = App(client.functions_url, auth.sign_in_with_google(email, "Klien Nakal", sub=google_sub))
    assert again.session is not None and again.session.uid == uid_of(client)
    assert again.get("pricing_quote").status == 200, "reinstated: a new sign-in serves again"


def test_clients_are_found_by_name_phone_or_email(
    admin: App, new_client: Callable[..., App], halo_db: Database
) -> None:
    marker = uuid.uuid4().hex[:8]
    client = new_client(f"Cari {marker}")
    client_id = _account_id(halo_db, "clients", client)
    with halo_db.transaction() as tx:
        email = tx.scalar("SELECT email FROM clients WHERE id = CAST(:c AS uuid)", {"c": client_id})

    by_name = admin.get("admin_users", q=f"cari {marker}")
    by_email = admin.get("admin_users", q=email.upper())
    wildcard = admin.get("admin_users", q="%", limit=1)

    assert [c["client_id"] for c in by_name.body["clients"]] == [client_id]
    assert [c["client_id"] for c in by_email.body["clients"]] == [client_id]
    assert by_name.body["clients"][0]["alias"].startswith("Bestie #")
    assert wildcard.body["clients"] == [], "LIKE wildcards are taken literally"


def test_clients_page_newest_first(admin: App, new_client: Callable[..., App], halo_db: Database) -> None:
    marker = uuid.uuid4().hex[:8]
    older = _account_id(halo_db, "clients", new_client(f"Halaman {marker} satu"))
    newer = _account_id(halo_db, "clients", new_client(f"Halaman {marker} dua"))

    first = admin.get("admin_users", q=f"halaman {marker}", limit=1)
    second = admin.get("admin_users", q=f"halaman {marker}", limit=1, cursor=first.body["next_cursor"])

    assert [c["client_id"] for c in first.body["clients"] + second.body["clients"]] == [newer, older]
    assert second.body["next_cursor"] is None


def test_bad_user_requests_are_400_with_the_field(admin: App) -> None:
    assert "client_id" in _fields(admin.post("admin_users", {"action": "suspend", "client_id": "nope"}))
    assert "action" in _fields(admin.post("admin_users", {"action": "ban", "client_id": str(uuid.uuid4())}))
    assert "limit" in _fields(admin.get("admin_users", limit=0))
    missing = admin.post("admin_users", {"action": "suspend", "client_id": str(uuid.uuid4())})
    assert (missing.status, missing.error_code) == (404, "not_found")


# -- admin_config ----------------------------------------------------------------------------------------------------


@pytest.fixture
def restore_config(admin: App) -> Iterator[None]:
    """Other tests expect the seeded settings and prices: put back what this test changes, through the API."""
    before = admin.get("admin_config").body
    yield
    sesi_30 = next(tier for tier in before["tiers"] if tier["id"] == "sesi-30")
    tier = {key: sesi_30[key] for key in ("id", "duration_s", "price", "active")}
    restored = admin.post("admin_config", {"settings": before["settings"], "tiers": [tier]})
    assert restored.status == 200, restored.body


def test_every_setting_and_tier_is_readable(admin: App) -> None:
    view = admin.get("admin_config")

    assert view.status == 200, view.body
    assert set(view.body["settings"]) == set(AppConfig.model_fields)
    assert set(view.body["versions"]) == set(AppConfig.model_fields)
    assert {"sesi-30", "sesi-60", "sesi-90"} <= {tier["id"] for tier in view.body["tiers"]}


def test_a_config_change_takes_effect_is_versioned_and_audited(
    admin: App, new_client: Callable[..., App], halo_db: Database, restore_config: None
) -> None:
    before = admin.get("admin_config").body
    old_minutes = before["settings"]["free_trial_minutes"]
    new_minutes = old_minutes + 5
    sesi_30 = next(tier for tier in before["tiers"] if tier["id"] == "sesi-30")

    changed = admin.post(
        "admin_config",
        {
            "settings": {"free_trial_minutes": new_minutes},
            "tiers": [{"id": "sesi-30", "duration_s": 1800, "price": sesi_30["price"] + 1000, "active": True}],
        },
    )

    assert changed.status == 200, changed.body
    assert changed.body["settings"]["free_trial_minutes"] == new_minutes
    version = before["versions"]["free_trial_minutes"]["version"]
    assert changed.body["versions"]["free_trial_minutes"]["version"] == version + 1
    assert changed.body["versions"]["free_trial_minutes"]["updated_by"] == uid_of(admin)
    quote = new_client().get("pricing_quote").body
    assert quote["free_trial"]["minutes"] == new_minutes
    assert next(t for t in quote["tiers"] if t["id"] == "sesi-30")["price"] == sesi_30["price"] + 1000
    audit = _audited(halo_db, "config.set", "free_trial_minutes")[-1]
    assert (audit["actor_uid"], audit["actor_role"]) == (uid_of(admin), "admin")
    assert audit["old_value"] == {"value": old_minutes, "version": version}
    assert audit["new_value"] == {"value": new_minutes, "version": version + 1}
    tier_audit = _audited(halo_db, "pricing_tier.set", "sesi-30")[-1]
    assert (tier_audit["old_value"]["price"], tier_audit["new_value"]["price"]) == (
        sesi_30["price"],
        sesi_30["price"] + 1000,
    )


def test_sending_the_same_value_changes_nothing(admin: App) -> None:
    before = admin.get("admin_config").body
    minutes = before["settings"]["free_trial_minutes"]

    again = admin.post("admin_config", {"settings": {"free_trial_minutes": minutes}})

    assert again.body["versions"]["free_trial_minutes"] == before["versions"]["free_trial_minutes"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"settings": {"free_trial_minutes": 0}}, "settings.free_trial_minutes"),
        ({"settings": {"max_concurrent_clients": 21}}, "settings.max_concurrent_clients"),
        ({"settings": {"heartbeat_grace_s": "90"}}, "settings.heartbeat_grace_s"),
        ({"settings": {"early_end_mitra": 1}}, "settings.early_end_mitra"),
        ({"settings": {"anonymity_mode": "everyone"}}, "settings.anonymity_mode"),
        ({"settings": {"free_trial_minutes": None}}, "settings.free_trial_minutes"),
        ({"settings": {"surge_pricing": True}}, "settings.surge_pricing"),
        ({"tiers": [{"id": "sesi-30", "duration_s": 1800, "price": -5, "active": True}]}, "tiers.0.price"),
        ({"tiers": [{"id": "Bad Id", "duration_s": 1800, "price": 5000, "active": True}]}, "tiers.0.id"),
        ({}, "body"),
    ],
)
def test_bad_settings_are_400_with_the_field(admin: App, body: dict[str, Any], field: str) -> None:
    assert field in _fields(admin.post("admin_config", body))


# -- admin_sessions: list and reroute --------------------------------------------------------------------------------


def _firestore_as(app: App, path: str) -> int:
    """Read a document as this app's user, so firestore.rules decide (the Admin path would bypass them)."""
    url = f"http://{os.environ['FIRESTORE_EMULATOR_HOST']}/v1/projects/{PROJECT}/databases/(default)/documents/{path}"
    assert app.session is not None
    return requests.get(url, headers={"Authorization": f"Bearer {app.session.id_token}"}, timeout=10).status_code


def _send(app: App, session_id: str, text: str) -> Any:
    return app.post("chat_send", {"session_id": session_id, "client_message_id": str(uuid.uuid4()), "text": text})


@pytest.mark.needs_gcloud
def test_a_rerouted_conversation_continues_with_the_new_mitra(
    admin: App,
    paired: Callable[..., Pair],
    new_mitra: Callable[..., App],
    halo_db: Database,
    watches: Callable[[Watch], Watch],
) -> None:
    pair = paired("Sari", "Mitra Lama")
    old_id = _account_id(halo_db, "mitras", pair.mitra)
    first = _send(pair.client, pair.session_id, "halo")
    assert _send(pair.mitra, pair.session_id, "halo juga").status == 200
    successor = new_mitra("Mitra Baru")
    new_id = _account_id(halo_db, "mitras", successor)
    session_doc = watches(Watch.document(f"sessions/{pair.session_id}"))
    assert _firestore_as(pair.mitra, f"sessions/{pair.session_id}") == 200

    reply = admin.post("admin_sessions", {"action": "reroute", "session_id": pair.session_id, "mitra_id": new_id})

    assert reply.status == 200, reply.body
    assert (reply.body["sessions"][0]["mitra_id"], reply.body["sessions"][0]["mitra_name"]) == (new_id, "Mitra Baru")
    doc = session_doc.wait_for(lambda d: any(uid_of(successor) in v.get("participant_uids", []) for v in d.values()))
    shown = next(iter(doc.values()))
    assert shown["participant_uids"] == [uid_of(pair.client), uid_of(successor)]
    assert (shown["mitra_uid"], shown["mitra_name"], shown["status"]) == (uid_of(successor), "Mitra Baru", "active")
    assert _send(successor, pair.session_id, "saya melanjutkan").status == 200
    assert _send(pair.client, pair.session_id, "terima kasih").status == 200
    transcript = successor.get("session_transcript", session_id=pair.session_id)
    assert [m["text"] for m in transcript.body["messages"]] == ["halo", "halo juga", "saya melanjutkan", "terima kasih"]
    cut_off = _send(pair.mitra, pair.session_id, "masih di sini?")
    assert (cut_off.status, cut_off.error_code) == (409, "session_not_active")
    assert pair.mitra.get("session_transcript", session_id=pair.session_id).status == 404
    assert _firestore_as(pair.mitra, f"sessions/{pair.session_id}") == 403, "the old mitra's listener is refused"
    assert _firestore_as(successor, f"sessions/{pair.session_id}") == 200
    assert _firestore_as(successor, f"sessions/{pair.session_id}/messages/{first.body['message_id']}") == 200
    with halo_db.transaction() as tx:
        closure = tx.one(
            "SELECT mitra_id::text, reason, closed_by FROM session_closures WHERE session_id = CAST(:s AS uuid)",
            {"s": pair.session_id},
        )
    assert closure == {"mitra_id": old_id, "reason": "rerouted", "closed_by": uid_of(admin)}
    audit = _audited(halo_db, "session.reroute", pair.session_id)
    assert [(a["old_value"], a["new_value"]) for a in audit] == [({"mitra_id": old_id}, {"mitra_id": new_id})]


@pytest.mark.needs_gcloud
def test_reroute_needs_an_available_mitra_and_an_active_session(
    admin: App, paired: Callable[..., Pair], new_mitra: Callable[..., App], halo_db: Database
) -> None:
    pair = paired()
    current = _account_id(halo_db, "mitras", pair.mitra)
    offline = _account_id(halo_db, "mitras", new_mitra("Mitra Tidur", online=False))

    def reroute(session_id: str, mitra_id: str) -> Any:
        return admin.post("admin_sessions", {"action": "reroute", "session_id": session_id, "mitra_id": mitra_id})

    unavailable = reroute(pair.session_id, offline)
    same = reroute(pair.session_id, current)
    missing = reroute(str(uuid.uuid4()), offline)
    bad = admin.post("admin_sessions", {"action": "reroute", "session_id": pair.session_id})

    assert (unavailable.status, unavailable.error_code) == (409, "mitra_unavailable")
    assert (same.status, same.error_code) == (409, "same_mitra")
    assert (missing.status, missing.error_code) == (404, "not_found")
    assert "mitra_id" in _fields(bad)
    with halo_db.transaction() as tx:
        tx.execute(
            "UPDATE sessions SET status = 'closed', closed_at = now() WHERE id = CAST(:s AS uuid)",
            {"s": pair.session_id},
        )
    ended = reroute(pair.session_id, _account_id(halo_db, "mitras", new_mitra("Mitra Siap")))
    assert (ended.status, ended.error_code) == (409, "session_not_active")


@pytest.mark.needs_gcloud
def test_sessions_are_listed_and_filtered(admin: App, paired: Callable[..., Pair], halo_db: Database) -> None:
    first, second = paired("Satu", "Mitra Satu"), paired("Dua", "Mitra Dua")
    mitra_id = _account_id(halo_db, "mitras", second.mitra)
    client_id = _account_id(halo_db, "clients", first.client)

    by_mitra = admin.get("admin_sessions", mitra_id=mitra_id)
    by_client = admin.get("admin_sessions", client_id=client_id, status="active")
    newest = admin.get("admin_sessions", limit=1)
    older = admin.get("admin_sessions", limit=1, cursor=newest.body["next_cursor"])

    assert [s["session_id"] for s in by_mitra.body["sessions"]] == [second.session_id]
    assert [s["session_id"] for s in by_client.body["sessions"]] == [first.session_id]
    assert by_client.body["sessions"][0]["client_name"] == "Satu"
    assert [s["session_id"] for s in newest.body["sessions"] + older.body["sessions"]] == [
        second.session_id,
        first.session_id,
    ]
    assert admin.get("admin_sessions", mitra_id=mitra_id, to_date="2020-01-01").body["sessions"] == []
    assert admin.get("admin_sessions", mitra_id=mitra_id, from_date="2020-01-01").body["sessions"] != []
    assert "status" in _fields(admin.get("admin_sessions", status="paused"))
    assert "to_date" in _fields(admin.get("admin_sessions", from_date="2024-02-02", to_date="2024-02-01"))


# -- admin_mitra_logs ------------------------------------------------------------------------------------------------


def test_mitra_logs_show_transitions_and_online_time(
    admin: App, new_mitra: Callable[..., App], halo_db: Database
) -> None:
    mitra = new_mitra("Mitra Rajin")
    mitra_id = _account_id(halo_db, "mitras", mitra)
    with halo_db.transaction() as tx:
        tx.execute(
            "UPDATE mitra_status_logs SET at = at - interval '1 hour' WHERE mitra_id = CAST(:m AS uuid)",
            {"m": mitra_id},
        )
    mitra.post("mitra_set_status", {"status": "offline"})

    logs = admin.get("admin_mitra_logs", mitra_id=mitra_id)

    assert logs.status == 200, logs.body
    assert [(c["to_status"], c["reason"]) for c in logs.body["changes"][-2:]] == [
        ("online", "manual"),
        ("offline", "manual"),
    ]
    assert len(logs.body["online_by_day"]) == 7, "the last seven Jakarta days by default"
    assert 3_590 <= logs.body["total_online_s"] <= 3_700, "online for about an hour"


def test_mitra_logs_refuse_bad_ranges(admin: App, new_mitra: Callable[..., App], halo_db: Database) -> None:
    mitra_id = _account_id(halo_db, "mitras", new_mitra("Mitra Log", online=False))

    backwards = admin.get("admin_mitra_logs", mitra_id=mitra_id, from_date="2025-02-02", to_date="2025-02-01")
    too_long = admin.get("admin_mitra_logs", mitra_id=mitra_id, from_date="2024-01-01", to_date="2025-01-01")
    unknown = admin.get("admin_mitra_logs", mitra_id=str(uuid.uuid4()))

    assert "from_date" in _fields(backwards)
    assert "from_date" in _fields(too_long)
    assert "mitra_id" in _fields(admin.get("admin_mitra_logs", mitra_id="nope"))
    assert (unknown.status, unknown.error_code) == (404, "not_found")


def test_every_admin_read_lands_in_the_audit_log(admin: App, halo_db: Database) -> None:
    admin.get("admin_dashboard")
    admin.get("admin_users", q="nobody-matches-this")

    with halo_db.transaction() as tx:
        reads = tx.all(
            "SELECT function, reads, queries FROM audit_reads WHERE actor_uid = :uid AND function = ANY(:f)",
            {"uid": uid_of(admin), "f": ["admin_dashboard", "admin_users"]},
        )
    assert {row["function"] for row in reads} == {"admin_dashboard", "admin_users"}, "counted per admin and hour"
    assert any({"q": "nobody-matches-this", "limit": 50} in row["queries"] for row in reads)


def test_only_an_admin_makes_another_admin(admin: App, stack: LocalStack, auth: AuthEmulator) -> None:
    email = f"ops-{uuid.uuid4().hex[:8]}@halo.local"
    newcomer = App(stack.functions_url, auth.sign_up_with_email(email, "secret-pass-1"))
    assert newcomer.get("admin_dashboard").status == 403, "a self-service sign-up has no role"
    unverified = admin.post("admin_admins", {"action": "grant", "email": email})
    assert (unverified.status, unverified.error_code) == (409, "email_not_verified"), "unverified: nothing"
    assert newcomer.session is not None
    assert newcomer.session.refresh().claims.get("role") is None
    auth.admin("update", {"localId": newcomer.session.uid, "emailVerified": True})  # they opened the link

    granted = admin.post("admin_admins", {"action": "grant", "email": email})
    assert granted.status == 200, granted.body
    assert newcomer.session is not None
    assert newcomer.session.refresh().claims["role"] == "admin"
    assert newcomer.get("admin_dashboard").status == 200
    assert email in [a["email"] for a in admin.get("admin_admins").body["admins"]]

    own = newcomer.post("admin_admins", {"action": "revoke", "admin_id": granted.body["admins"][0]["admin_id"]})
    unknown = admin.post("admin_admins", {"action": "grant", "email": "nobody-here@halo.local"})
    time.sleep(1.1)  # revocation compares whole seconds
    revoked = admin.post("admin_admins", {"action": "revoke", "admin_id": granted.body["admins"][0]["admin_id"]})

    assert granted.body["admins"][0]["on_duty"] is True, "a new admin is on duty"
    missing = admin.post("admin_admins", {"action": "set_on_duty", "admin_id": granted.body["admins"][0]["admin_id"]})
    nobody = admin.post("admin_admins", {"action": "set_on_duty", "admin_id": str(uuid.uuid4()), "on_duty": False})
    assert (missing.status, _fields(missing)) == (400, ["set_on_duty.on_duty"])
    assert (nobody.status, nobody.error_code) == (404, "not_found")
    assert (own.status, own.error_code) == (409, "cannot_revoke_self")
    assert (unknown.status, unknown.error_code) == (404, "not_found")
    assert revoked.status == 200
    assert newcomer.get("admin_dashboard").status in (401, 403)
