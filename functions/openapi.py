"""The OpenAPI 3.1 document of the app-facing functions, generated from the endpoint table and its models: each
operation's description (its handler's docstring), area (tag), callers (`x-roles`), request and reply with examples
(the models' own), and the error statuses it may answer (`@endpoint(errors=...)`, checked against the running
stack by tests/e2e/test_fuzz_api.py), each with the error codes that status carries."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from functions._http import ENDPOINTS, Endpoint
from shared.schemas import ErrorEnvelope
from shared.schemas.examples import example

_ROOT = Path(__file__).resolve().parents[1]
LOCAL_SERVER = "http://127.0.0.1:5001"
PRODUCTION_SERVER = "https://{region}-{project}.cloudfunctions.net"

# Each error status: what it means, and the codes its envelope carries (None: a named code of the operation's own).
ERRORS: dict[int, tuple[str, list[str] | None]] = {
    400: ("The request is refused as sent: `fields` names each offending field and what is wrong with it.",
          ["invalid_request"]),
    401: ("No valid Firebase ID token: send `Authorization: Bearer <token>` (refresh it and retry once).",
          ["unauthenticated"]),
    403: ("The caller may not do this: a role the operation does not admit (`forbidden`), a suspended account "
          "(`suspended`), or a named refusal.",
          ["forbidden", "suspended", "not_a_mitra", "unsupported_sign_in", "role_conflict", "early_end_disabled",
           "relink_refused", "not_the_previous_login", "another_sign_in_method_required", "recent_sign_in_required"]),
    404: ("What the request names does not exist, or is not the caller's.", ["not_found", "no_takeover"]),
    405: ("The operation does not take this method.", ["method_not_allowed"]),
    409: ("A named conflict: the state refuses the request (the code says which, docs/contract.md explains them), or "
          "an `Idempotency-Key` was reused with another body (`idempotency_key_reused`).", None),  # conflict_codes()
    413: ("The body is over the limit (`limit_bytes`); refused before it was read.", ["payload_too_large"]),
    429: ("Too often: retry after `Retry-After` seconds (also `retry_after_s`).", ["rate_limited"]),
    503: ("A dependency failed; retry the same request (it is idempotent) after `Retry-After` seconds.",
          ["unavailable"]),
}  # fmt: skip
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying (RFC 9110).",
        "schema": {"type": "integer", "minimum": 1},
    }
}
TAGS = {
    "accounts": "Sign-up and profiles: clients register, mitras sign in with their phone.",
    "pricing": "What a session costs, the client's unused paid sessions and the free trial.",
    "billing": "Paying for sessions through Xendit invoices; a client's payment history and receipts.",
    "pairing": "A client asks for a mitra; every available mitra is offered the request; the first to accept wins.",
    "presence": "Mitras going online and offline, and staying online.",
    "chat": "Messages, receipts and typing in a session, and reading sessions back.",
    "lifecycle": "Ending sessions, goodbyes and extensions.",
    "notify": "Registering a device for pushes.",
    "privacy": "A client's own data: export and account deletion.",
    "safety": "After a session and safety between people: feedback, a mitra's private notes, reports and blocks.",
    "admin": "The control center (admins only; most are audited).",
}
# The reply of an endpoint declared `csv=True` when asked `format=csv` (functions/_http.py CsvFile).
_CSV = {
    "text/csv": {
        "schema": {
            "type": "string",
            "description": "RFC 4180 CSV (UTF-8, CRLF): a header row, then one row per item; amounts in whole IDR. "
            "Sent as an attachment named in Content-Disposition.",
        }
    }
}
_ROLES = {"client": "clients", "mitra": "mitras", "admin": "admins"}


def document() -> dict[str, Any]:
    endpoints = sorted(ENDPOINTS.values(), key=lambda e: e.name)
    models: set[type[BaseModel]] = {ErrorEnvelope}
    for spec in endpoints:
        models.update((*spec.methods.values(), spec.response))
    keyed, schemas = models_json_schema(
        [(model, "validation") for model in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    refs = {model: keyed[(model, "validation")] for model in models}
    paths: dict[str, Any] = {}
    for spec in endpoints:
        paths[f"/{spec.name}"] = {
            method.lower(): _operation(spec, method, request, refs) for method, request in spec.methods.items()
        }
    used_tags = {spec.tag for spec in endpoints}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Halo Bestie backend",
            "version": "1",
            "description": (
                "The app-facing functions of the Halo Bestie backend: one path per function, called with a Firebase "
                "ID token. What the apps read besides (Firestore documents, push payloads) is described in "
                "docs/contract.md and the JSON Schemas under contract/."
            ),
        },
        "servers": [
            {"url": LOCAL_SERVER, "description": "The local gateway (`make dev`)."},
            {
                "url": PRODUCTION_SERVER,
                "description": "Production: Cloud Functions of the project, in its region.",
                "variables": {
                    "region": {"default": "asia-southeast2", "description": "The functions' region."},
                    "project": {
                        "default": "project-id",
                        "description": "The Google Cloud project id (infra's project_id).",
                    },
                },
            },
        ],
        "tags": [{"name": name, "description": text} for name, text in TAGS.items() if name in used_tags],
        "paths": paths,
        "components": {
            "schemas": {**schemas.get("$defs", {}), **{f"Error{status}": _error(status) for status in ERRORS}},
            "securitySchemes": {"firebase": {"type": "http", "scheme": "bearer", "bearerFormat": "Firebase ID token"}},
        },
    }


def conflict_codes() -> list[str]:
    """Every code a 409 can carry: each `Conflict(..., code="...")` written in the code (found by reading it), and
    the codes the rules hand to a Conflict as values (pairing's refusals, the control center's, a refund's)."""
    from shared.domain import admin, billing
    from shared.domain.pairing import Refusal

    codes: set[str] = set()
    for path in sorted([*(_ROOT / "shared").rglob("*.py"), *(_ROOT / "functions").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and _called(node) == "Conflict":
                codes.update(
                    k.value.value
                    for k in node.keywords
                    if k.arg == "code" and isinstance(k.value, ast.Constant) and isinstance(k.value.value, str)
                )
    # Pairing's refusals answer 409 but for the rate limit (429) and an unknown tier (400).
    codes.update(r.value for r in Refusal if r not in (Refusal.RATE_LIMITED, Refusal.UNKNOWN_TIER))
    codes.update(v.code for v in vars(admin).values() if isinstance(v, admin.Refused))
    codes.update(code for status in billing.CreditStatus if (code := billing.refund_refusal(status)) is not None)
    return sorted(codes)


def _called(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _error(status: int) -> dict[str, Any]:
    """The envelope of one error status, its `code` limited to the codes that status carries."""
    _, codes = ERRORS[status]
    if status == 409:
        codes = conflict_codes()
    code: dict[str, Any] = {"type": "string"}
    if codes is not None:
        code["enum"] = codes
    details: dict[str, Any] = {"code": code, "message": {"type": "string"}}
    if status in (400, 413):
        details["fields"] = {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "problem": {"type": "string"}},
                "required": ["field", "problem"],
            },
        }
    if status == 413:
        details["limit_bytes"] = {"type": "integer"}
    if status == 429:
        details["retry_after_s"] = {"type": "integer"}
    return {
        "title": f"Error{status}",
        "type": "object",
        "properties": {"error": {"type": "object", "properties": details, "required": ["code", "message"]}},
        "required": ["error"],
    }


def _summary(description: str) -> str:
    """The description's first sentence."""
    first = re.split(r"(?<=[.;:])\s", description, maxsplit=1)[0]
    return first.rstrip(";:") if first.endswith((";", ":")) else first


def _description(spec: Endpoint, method: str) -> str:
    text = spec.descriptions.get(method, "")
    who = (
        "Any signed-in user may call it."
        if spec.roles is None
        else "Callable by " + " and ".join(_ROLES[str(role)] for role in sorted(spec.roles)) + "."
    )
    notes = [text, who]
    if spec.check_revoked:
        notes.append("A revoked token is refused (Firebase is asked).")
    return " ".join(note for note in notes if note)


def _operation(spec: Endpoint, method: str, request: type[BaseModel], refs: dict[Any, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": spec.name if len(spec.methods) == 1 else f"{spec.name}_{method.lower()}",
        "summary": _summary(spec.descriptions.get(method, spec.summary)),
        "description": _description(spec, method),
        "tags": [spec.tag],
        "security": [{"firebase": []}],
        "responses": {
            "200": {
                "description": "OK",
                "content": {
                    "application/json": _content(refs[spec.response], spec.response, request=False),
                    **(_CSV if spec.csv else {}),
                },
            },
            **{str(status): _error_response(status) for status in sorted(spec.errors)},
        },
    }
    if spec.roles is not None:
        operation["x-roles"] = sorted(spec.roles)
    if method == "GET":
        operation["parameters"] = _query_parameters(request)
    else:
        operation["parameters"] = [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "1-200 printable characters naming this call: a retry with it answers the same.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 200},
            }
        ]
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": _content(refs[request], request, request=True)},
        }
    return operation


def _content(ref: dict[str, Any], model: type[BaseModel], *, request: bool) -> dict[str, Any]:
    return {"schema": ref, "example": example(model, request=request)}


def _error_response(status: int) -> dict[str, Any]:
    text, _ = ERRORS[status]
    response: dict[str, Any] = {
        "description": text,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/Error{status}"}}},
    }
    if status in (429, 503):
        response["headers"] = _RETRY_AFTER
    return response


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    shown = example(model, request=True)
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if prop.get("description"):
            parameter["description"] = prop["description"]
        if name in shown:
            parameter["example"] = shown[name]
        parameters.append(parameter)
    return parameters


if __name__ == "__main__":
    import json
    import sys

    import main

    for name in main.__all__:
        getattr(main, name)
    json.dump(document(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
