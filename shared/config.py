"""Settings from the environment: one place that knows every knob a deployment can turn."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ENV_PREFIX = "HALO_"


class Settings(BaseModel):
    """Each field from `HALO_<NAME>` (any case; `project_id` from GOOGLE_CLOUD_PROJECT), else its default; values
    given as arguments win. Read with pydantic alone, not pydantic-settings: every cold start imports this, and that
    library (with asyncio, dotenv and its cloud secret sources) cost ~150 ms of it for nine-in-ten unused features."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    def __init__(self, **values: Any) -> None:
        super().__init__(**{**_from_environment(), **values})

    project_id: str = Field(default="demo-halo", validation_alias="GOOGLE_CLOUD_PROJECT")
    region: str = "asia-southeast2"

    # PostgreSQL: a host locally; a Cloud SQL instance connection name in production.
    db_host: str = "127.0.0.1"
    db_port: int = 5432
    db_name: str = "halo"
    db_user: str = "postgres"
    db_password: str | None = None
    cloud_sql_instance: str | None = None
    # The most connections one instance holds open (idle or in use); requests beyond them wait up to
    # db_pool_wait_s for one, then answer 503 with Retry-After. infra/functions.tf budgets max instances x this.
    db_pool_size: int = 16
    db_pool_wait_s: float = 5.0
    # A sweep that finds rows failing (a destination down) stays up to this long, trying them again every few
    # seconds, so timers delayed by a Cloud Tasks outage are created within seconds of its end, not at the next
    # scheduled sweep a minute later (shared/services/projector.py `sweep`).
    outbox_sweep_stay_s: float = 45.0
    # A connection idle this long is checked (one empty query) before it is handed out; one this old is replaced.
    db_ping_after_s: float = 10.0
    db_max_age_s: float = 1800.0

    # Where task handlers and push endpoints live (the gateway locally, the functions' base URL in production).
    functions_base_url: str = "http://127.0.0.1:5001"
    tasks_location: str = "asia-southeast2"
    tasks_service_account: str = "tasks-invoker@demo-halo.iam.gserviceaccount.com"
    tasks_emulator_host: str | None = None
    # Task and Pub/Sub push handlers check the caller's Google-signed OIDC token (functions/_callers.py): signed by
    # a key at this URL (Google's; the local stack serves its own), for the tasks invoker or the push account.
    oidc_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"
    push_service_account: str = "eventarc@demo-halo.iam.gserviceaccount.com"

    xendit_host: str = "https://api.xendit.co"
    xendit_secret_key: str = ""
    xendit_callback_token: str = ""

    fcm_base_url: str = "https://fcm.googleapis.com"
    fcm_use_credentials: bool = True

    # Firestore writes and Pub/Sub publishes go, by default, through a fast path that uses private attributes of
    # google-cloud-firestore / google-cloud-pubsub (shared/adapters/firestore.py, pubsub.py); true sends them through
    # the libraries' public API instead, with the same behaviour at some CPU cost. Flip it when a library upgrade
    # breaks the fast path (the canary test tests/unit/test_client_library_canary.py names what changed).
    public_client_api: bool = False

    # Keys the hashes that bind a free trial to a verified phone number or email (docs/privacy.md). A secret in
    # production (Secret Manager, infra/secrets.tf); this default serves the local stack and the tests only.
    identity_hash_key: str = "halo-local-identity-hash-key"

    # How long an instance trusts its cached view of a caller's role and suspension.
    identity_cache_s: float = 5.0

    # What a receipt prints about the seller (`billing_receipt`, docs/operations.md): placeholders until the company's
    # legal name, registered address and tax number (NPWP) are set. A PPN rate above 0 prints the tax contained in
    # each price (prices are tax-inclusive; shared.domain.billing_history.tax_split); 0 prints no tax line.
    receipt_merchant_name: str = "Halo Bestie"
    receipt_merchant_address: str = "Jakarta, Indonesia"
    receipt_merchant_npwp: str = "00.000.000.0-000.000"
    receipt_ppn_rate_percent: float = Field(default=0.0, ge=0, le=100)

    # Set by Cloud Logging-aware deployments; lets log lines join the request's trace.
    log_level: str = "INFO"


def _from_environment() -> dict[str, str]:
    environment = {name.upper(): value for name, value in os.environ.items()}
    found: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        key = str(field.validation_alias) if field.validation_alias else f"{ENV_PREFIX}{name}"
        if key.upper() in environment:
            found[name] = environment[key.upper()]
    return found


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
