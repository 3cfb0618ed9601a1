"""Who may call the internal functions, checked in code as well as by IAM (defence in depth).

Cloud Tasks calls each task handler with an OIDC token of the tasks invoker account whose audience is the handler's
URL (shared/adapters/cloud_tasks.py sets both); Pub/Sub push (Eventarc) calls each event function with a token of the
push account whose audience is the function's Cloud Run service URL. A call without such a token, or with one for
another audience or account, is refused with 401 before anything is read from it or done for it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from urllib.parse import urlsplit

import flask

from shared.config import get_settings
from shared.errors import Unauthenticated
from shared.logging import event

log = logging.getLogger("halo.callers")


def verify_task_caller(req: flask.Request, function: str) -> None:
    settings = get_settings()
    own_url = _own_url(function)
    _verify(req, function, settings.tasks_service_account, lambda audience: audience == own_url)


def verify_push_caller(req: flask.Request, function: str) -> None:
    """Eventarc's push subscription names the function's Cloud Run service URL as the audience, which the function
    does not know ahead (Cloud Run gives it after the deploy): a run.app URL of this service (`K_SERVICE`, which
    Cloud Run sets) is accepted, as is the function's URL under `functions_base_url` (the local stack's relay)."""
    settings = get_settings()
    own_url = _own_url(function)
    service = os.environ.get("K_SERVICE")

    def answers_to(audience: str) -> bool:
        if audience == own_url:
            return True
        url = urlsplit(audience)
        host = url.hostname or ""
        return bool(service) and url.scheme == "https" and host.startswith(f"{service}-") and host.endswith(".run.app")

    _verify(req, function, settings.push_service_account, answers_to)


def _own_url(function: str) -> str:
    return f"{get_settings().functions_base_url.rstrip('/')}/{function}"


def _verify(req: flask.Request, function: str, account: str, audience: Callable[[str], bool]) -> None:
    from shared import bootstrap

    scheme, _, token = req.headers.get("Authorization", "").partition(" ")
    try:
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("this function is called by Google with an OIDC token: send `Authorization: Bearer`")
        bootstrap.oidc().verify(token.strip(), audience=audience, email=account)
    except Unauthenticated as err:
        event(log, "internal caller refused", logging.WARNING, function=function, reason=err.message)
        raise
