"""Wiring, in one place: every port the use cases take is built here, once per process, on first use.

Functions ask this module for what they hand to a service (`ports()`, `firebase_auth()`, `payments()`, ...). Each
adapter is built lazily, so an instance pays at cold start only for the SDKs its own function uses, and is reused by
every later request of the instance. Caches (identities, verified tokens, prepared statements) live in the adapters,
bounded.
"""

from __future__ import annotations

import contextlib
import os
import threading
from functools import cache
from typing import TYPE_CHECKING

from shared.adapters.postgres.database import Database, connector_for
from shared.adapters.postgres.outbox import published_marks
from shared.config import get_settings
from shared.services.ports import Ports
from shared.services.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from shared.adapters.cloud_tasks import CloudTasksScheduler
    from shared.adapters.fcm import FcmSender
    from shared.adapters.firebase_auth import FirebaseAuth
    from shared.adapters.firestore import FirestoreWriter
    from shared.adapters.google_oidc import OidcVerifier
    from shared.adapters.identity_cache import IdentityCache
    from shared.adapters.pubsub import PubSubPublisher
    from shared.adapters.xendit_payments import XenditInvoices


@cache
def database() -> Database:
    settings = get_settings()
    return Database(
        connector_for(settings),
        max_idle=settings.db_pool_size,
        max_open=settings.db_pool_size,
        wait_s=settings.db_pool_wait_s,
        ping_after_s=settings.db_ping_after_s,
        max_age_s=settings.db_max_age_s,
    )


WARMABLE = ("firebase_auth", "oidc", "firestore", "publisher", "tasks", "payments")
# The clients a function's first request builds besides PostgreSQL's, built early by `warm_up` (lazy but early).
# Checked against what each function's first request really loads by `python -m bench cold_reply` (bench/REPORT.md).
EARLY_CLIENTS: dict[str, tuple[str, ...]] = {
    "chat_send": ("firebase_auth", "firestore", "publisher"),
    "pairing_request": ("firebase_auth", "firestore", "publisher", "tasks"),
    "pairing_accept": ("firebase_auth", "firestore", "publisher", "tasks"),
    "billing_checkout": ("firebase_auth", "firestore", "tasks", "payments"),
    "admin_dashboard": ("firebase_auth",),
    "task_project_outbox": ("oidc", "firestore"),
}


def warm_up(function: str = "") -> None:
    """Open the first PostgreSQL connection on a thread while the function's code is still being imported (main.py
    asks on a deployed instance): the first request, which would wait for it (a Cloud SQL connector's certificates
    and TLS handshake, in production), finds it in the pool. Then, on the same thread, the clients `EARLY_CLIENTS`
    names for the function: their SDK imports, channels and certificates overlap the import and the connection
    (HALO_WARM_CLIENTS=0: the connection alone, to measure the difference)."""
    clients = EARLY_CLIENTS.get(function, ()) if os.environ.get("HALO_WARM_CLIENTS", "1") == "1" else ()
    threading.Thread(target=_warm, args=(clients,), name="halo-warm-up", daemon=True).start()


def _warm(clients: tuple[str, ...]) -> None:
    database().warm()
    for client in clients:
        with contextlib.suppress(Exception):  # a failure is left for the first request to meet and answer
            _warm_client(client)


def _warm_client(client: str) -> None:
    if client == "firebase_auth":
        firebase_auth()._auth()  # the SDK imported and its app initialized
    elif client == "oidc":
        oidc()._certs_for("")  # Google's signing certificates fetched
    elif client == "firestore":
        firestore().client  # noqa: B018 (the property builds the client and its channel)
    elif client == "publisher":
        publisher().warm()
    elif client == "tasks":
        tasks().warm()
    elif client == "payments":
        payments()._api("invoice")  # the Xendit SDK imported, its client and invoice API built


@cache
def firestore() -> FirestoreWriter:
    from shared.adapters.firestore import FirestoreWriter

    return FirestoreWriter(get_settings().project_id)


@cache
def publisher() -> PubSubPublisher:
    from shared.adapters.pubsub import PubSubPublisher

    return PubSubPublisher(get_settings().project_id)


@cache
def firebase_auth() -> FirebaseAuth:
    from shared.adapters.firebase_auth import FirebaseAuth

    return FirebaseAuth(get_settings().project_id)


@cache
def oidc() -> OidcVerifier:
    """Checks the Google-signed tokens Cloud Tasks and Pub/Sub push send (certificates kept between requests)."""
    from shared.adapters.google_oidc import OidcVerifier

    return OidcVerifier(get_settings().oidc_certs_url)


@cache
def identities() -> IdentityCache:
    """Who each recently seen uid is, shared by every request of the instance."""
    from shared.adapters.identity_cache import IdentityCache

    return IdentityCache(get_settings().identity_cache_s)


@cache
def tasks() -> CloudTasksScheduler:
    from shared.adapters.cloud_tasks import CloudTasksScheduler

    settings = get_settings()
    return CloudTasksScheduler(
        project=settings.project_id,
        location=settings.tasks_location,
        target_base_url=settings.functions_base_url,
        service_account_email=settings.tasks_service_account,
        emulator_host=settings.tasks_emulator_host,
    )


@cache
def ports() -> Ports:
    return ports_on(database())


def ports_on(db: Database) -> Ports:
    """The ports on one database, with the process's Firestore, Pub/Sub and Cloud Tasks clients (tests and
    benchmarks swap one with `dataclasses.replace`)."""

    def unit_of_work(*, one_statement: bool = False) -> UnitOfWork:
        from shared.adapters.postgres.uow import PostgresUnitOfWork

        return PostgresUnitOfWork(db, one_statement=one_statement)

    return Ports(
        uow=unit_of_work,
        documents=firestore(),
        publisher=publisher(),
        tasks=tasks(),
        marks=published_marks(db),
    )


@cache
def fcm() -> FcmSender:
    from shared.adapters.fcm import FcmSender

    settings = get_settings()
    return FcmSender(
        project=settings.project_id, base_url=settings.fcm_base_url, use_credentials=settings.fcm_use_credentials
    )


@cache
def payments() -> XenditInvoices:
    from shared.adapters.xendit_payments import XenditInvoices

    settings = get_settings()
    return XenditInvoices(secret_key=settings.xendit_secret_key, host=settings.xendit_host)
