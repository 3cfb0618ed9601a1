"""The process-wide client cache: each adapter is built on first use and reused by every later request."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from shared.adapters.db import Database, connector_for
from shared.config import get_settings
from shared.services.ports import Ports

if TYPE_CHECKING:
    from shared.adapters.cloud_tasks import CloudTasksScheduler
    from shared.adapters.fcm import FcmSender
    from shared.adapters.firebase_auth import FirebaseAuth
    from shared.adapters.firestore import FirestoreWriter
    from shared.adapters.pubsub import PubSubPublisher
    from shared.adapters.xendit_payments import XenditInvoices


@cache
def database() -> Database:
    settings = get_settings()
    return Database(connector_for(settings), max_idle=settings.db_pool_size)


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
    return Ports(db=database(), documents=firestore(), publisher=publisher(), tasks=tasks())


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
