"""The shape every app-facing HTTP function shares: method check, Firebase token, pydantic parsing, error envelope.

@endpoint(method="GET", roles={Role.CLIENT}, response=PricingQuote)
def pricing_quote(call: Call[Empty]) -> PricingQuote: ...
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import flask
import functions_framework
from pydantic import BaseModel, ValidationError

from functions._replies import (
    HttpFunction,
    failure_response,
    json_response,
    read_body,
    read_json_object,
    refuse_unstorable_text,
)
from shared.adapters.firebase_auth import VerifiedToken
from shared.config import get_settings
from shared.domain.accounts import sign_in_revoked
from shared.domain.chat import Participant
from shared.domain.idempotency import KeyedCall, request_hash
from shared.domain.roles import Role
from shared.errors import Forbidden, InvalidRequest, MethodNotAllowed, Unauthenticated
from shared.logging import configure, event, set_trace
from shared.schemas import Empty, invalid_fields, unknown_fields

log = logging.getLogger("halo.http")

Body = TypeVar("Body", bound=BaseModel)
_IDEMPOTENCY_KEY_MAX = 200
# An unknown field's name is the sender's text: what is logged of it is bounded.
_LOGGED_NAMES_MAX = 20
_LOGGED_NAME_MAX = 64


@dataclass(frozen=True)
class Caller:
    uid: str
    role: Role | None
    # The caller's row in clients / mitras / admins, when it has one.
    account_id: str | None
    token: VerifiedToken

    def participant(self) -> Participant:
        """The caller as a session's participant: for endpoints that admit only clients and mitras."""
        assert self.role in (Role.CLIENT, Role.MITRA) and self.account_id is not None
        return Participant(self.role, self.account_id, self.uid)


@dataclass(frozen=True)
class Call(Generic[Body]):
    caller: Caller
    method: str
    body: Body
    idempotency_key: str | None
    function: str = ""

    @property
    def keyed(self) -> KeyedCall | None:
        """The call as its Idempotency-Key names it (docs/contract.md "Retries and idempotency"); None without one."""
        if self.idempotency_key is None:
            return None
        asked = request_hash(self.body.model_dump(mode="json"))
        return KeyedCall(self.caller.uid, self.function, self.idempotency_key, asked)


@dataclass(frozen=True)
class Endpoint:
    name: str
    # The request model of each accepted method (POST bodies, GET query strings).
    methods: dict[str, type[BaseModel]]
    roles: frozenset[Role] | None
    response: type[BaseModel]
    summary: str
    check_revoked: bool
    # What the OpenAPI document says of it (functions/openapi.py): each method's description, its area, and the
    # error statuses it may answer (every operation answers COMMON_ERRORS; tests/e2e/test_fuzz_api.py fails on an
    # answer the document does not declare).
    descriptions: dict[str, str] = field(default_factory=dict)
    tag: str = ""
    errors: frozenset[int] = frozenset()
    # Also answers a CSV file (`CsvFile`, text/csv) when asked with `format=csv`.
    csv: bool = False


class CsvFile(BaseModel):
    """A reply sent as a file instead of JSON (text/csv, `Content-Disposition: attachment`): for an endpoint
    declared with `csv=True`."""

    filename: str
    text: str


# Any operation may answer these: 400 input it refuses, 401 no valid token, 403 a role it does not admit or a
# suspended account, 405 another method, 413 a body over the limit, 503 a dependency down (retry after Retry-After).
COMMON_ERRORS: frozenset[int] = frozenset({400, 401, 403, 405, 413, 503})
# What an operation may add with `errors=`: 404 what it names does not exist (for the caller), 409 a named conflict
# (a state that refuses it, or an Idempotency-Key reused with another body), 429 too often (retry after Retry-After).
OWN_ERRORS: frozenset[int] = frozenset({404, 409, 429})


# Every endpoint registers here on import; the OpenAPI document is built from this table.
ENDPOINTS: dict[str, Endpoint] = {}


def endpoint(
    *,
    response: type[BaseModel],
    post: type[BaseModel] | None = None,
    get: type[BaseModel] | None = None,
    roles: set[Role] | None = None,
    check_revoked: bool = False,
    errors: Collection[int] = (),
    tag: str | None = None,
    csv: bool = False,
) -> Callable[[Callable[[Call[Any]], BaseModel]], HttpFunction]:
    """`roles=None` admits any signed-in user (e.g. before registration gives them a role).
    `check_revoked` asks Firebase whether the token was revoked: one more call, for sensitive functions.
    `errors`: the statuses of OWN_ERRORS the function may answer besides COMMON_ERRORS. `tag`: its area in the
    OpenAPI document (by default `admin` for `admin_*` functions, else its module's name). The handler's docstring
    is its description; one that takes GET and POST describes each after `GET:` and `POST:`."""
    methods = {method: model for method, model in (("GET", get), ("POST", post)) if model is not None}
    unknown = set(errors) - OWN_ERRORS
    if unknown:
        raise ValueError(f"errors= takes statuses of {sorted(OWN_ERRORS)}, not {sorted(unknown)}")

    def decorate(handler: Callable[[Call[Any]], BaseModel]) -> HttpFunction:
        accepted = methods or {"POST": Empty}
        descriptions = method_descriptions(handler.__doc__ or "", list(accepted))
        spec = Endpoint(
            name=handler.__name__,
            methods=accepted,
            roles=frozenset(roles) if roles is not None else None,
            response=response,
            summary=(handler.__doc__ or "").strip().split("\n")[0],
            check_revoked=check_revoked,
            descriptions=descriptions,
            tag=tag or _area(handler),
            errors=COMMON_ERRORS | frozenset(errors),
            csv=csv,
        )
        ENDPOINTS[spec.name] = spec

        @functions_framework.http
        @functools.wraps(handler)
        def http_function(req: flask.Request) -> flask.Response:
            configure(get_settings().log_level)
            set_trace(req.headers.get("X-Cloud-Trace-Context"), get_settings().project_id)
            try:
                read_body(req)  # first: a body over the limit is refused before anything else is done
                model = spec.methods.get(req.method)
                if model is None:
                    raise MethodNotAllowed(f"{spec.name} takes {' or '.join(spec.methods)}")
                caller = authenticate(req, spec)
                body = parse(req, model, function=spec.name)
                result = handler(Call(caller, req.method, body, _idempotency_key(req), spec.name))
                if caller.role is Role.ADMIN and req.method == "GET":
                    _audit_read(caller, spec.name, body)
                return _reply(result)
            except Exception as exc:
                return failure_response(exc, spec.name)

        return http_function

    return decorate


def _reply(result: BaseModel) -> flask.Response:
    if isinstance(result, CsvFile):
        disposition = f'attachment; filename="{result.filename}"'
        return flask.Response(
            result.text, status=200, mimetype="text/csv", headers={"Content-Disposition": disposition}
        )
    return json_response(200, result.model_dump(mode="json"))


def method_descriptions(doc: str, methods: list[str]) -> dict[str, str]:
    """Each method's description from a docstring: the whole text, or for `GET: ... POST: ...` each part, as
    whole sentences (capitalised, ending with a full stop)."""
    text = " ".join(doc.split())
    parts = dict.fromkeys(methods, text)
    if len(methods) > 1 and "GET:" in text and "POST:" in text:
        get_part, _, post_part = text.partition("POST:")
        parts = {"GET": get_part.replace("GET:", "", 1), "POST": post_part}
    return {method: _sentence(part) for method, part in parts.items()}


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "?", "!", ")")) else text + "."


def _area(handler: Callable[..., Any]) -> str:
    if handler.__name__.startswith("admin_"):
        return "admin"
    return handler.__module__.rsplit(".", 1)[-1]


def authenticate(req: flask.Request, spec: Endpoint) -> Caller:
    from shared import bootstrap
    from shared.services import identity

    header = req.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send `Authorization: Bearer <Firebase ID token>`")
    verified = bootstrap.firebase_auth().verify(token.strip(), check_revoked=spec.check_revoked)
    known = identity.resolve(bootstrap.ports(), bootstrap.identities(), verified.uid)
    if known.suspended:
        raise Forbidden("this account is suspended", code="suspended")
    if sign_in_revoked(verified.auth_time, known.tokens_valid_after):  # without asking Firebase, on every call
        raise Unauthenticated("the ID token has been revoked")
    if spec.roles is not None and known.role not in spec.roles:
        raise Forbidden("this function is not available to your account")
    return Caller(uid=verified.uid, role=known.role, account_id=known.account_id, token=verified)


def _audit_read(caller: Caller, function: str, query: BaseModel) -> None:
    """Every admin call lands in the audit trail; changes are recorded by their services with old and new values
    (one audit_log row each), reads here: one row per admin, function and hour counts them, with the questions
    asked (`AuditRepository.count_read`), so a dashboard polled every few seconds is not a row per poll."""
    from shared import bootstrap

    with bootstrap.ports().uow(one_statement=True) as uow:
        uow.audit.count_read(
            actor_uid=caller.uid,
            actor_role="admin",
            function=function,
            query=query.model_dump(mode="json", exclude_none=True),
        )


def parse(req: flask.Request, model: type[BaseModel], *, function: str = "") -> BaseModel:
    """Query strings are coerced (they are all text); JSON bodies are strict, so `"1"` is not a number. Fields the
    model does not know are ignored, and their names (never their values) logged (docs/contract.md)."""
    raw: dict[str, Any]
    try:
        if req.method == "GET":
            repeated = [key for key in req.args if len(req.args.getlist(key)) > 1]
            if repeated:
                raise InvalidRequest(
                    "each query parameter may be given once",
                    fields=[{"field": key, "problem": "given more than once"} for key in repeated],
                )
            raw = {key: req.args.get(key) for key in req.args}
            refuse_unstorable_text(raw)
            parsed = model.model_validate(raw)
        else:
            data, raw = read_json_object(req)
            refuse_unstorable_text(raw)
            parsed = model.model_validate_json(data, strict=True)
    except ValidationError as exc:
        raise InvalidRequest("some fields are invalid", fields=invalid_fields(exc)) from exc
    ignored = unknown_fields(parsed, raw)
    if ignored:
        names = [name[:_LOGGED_NAME_MAX] for name in ignored[:_LOGGED_NAMES_MAX]]
        event(log, "unknown fields ignored", function=function, fields=names, count=len(ignored))
    return parsed


def _idempotency_key(req: flask.Request) -> str | None:
    key = req.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > _IDEMPOTENCY_KEY_MAX or not key.isprintable():
        raise InvalidRequest(
            "Idempotency-Key must be 1-200 printable characters",
            fields=[{"field": "Idempotency-Key", "problem": "invalid"}],
        )
    return key
