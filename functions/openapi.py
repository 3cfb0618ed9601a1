"""The OpenAPI 3.1 document of the app-facing functions, generated from the endpoint table and its models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from functions._http import ENDPOINTS, Endpoint
from shared.schemas import ErrorEnvelope

_ERRORS = {
    "400": "invalid_request: the offending fields are listed",
    "401": "unauthenticated",
    "403": "forbidden (or a named refusal such as not_a_mitra)",
    "404": "not_found",
    "409": "a named conflict",
    "413": "payload_too_large: the body is over the limit (`limit_bytes`), refused before it was read",
    "429": "rate_limited, with Retry-After",
    "503": "unavailable: a dependency failed; retry the same request after Retry-After (seconds)",
}


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
    return {
        "openapi": "3.1.0",
        "info": {"title": "Halo Bestie backend", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"firebase": {"type": "http", "scheme": "bearer", "bearerFormat": "Firebase ID token"}},
        },
    }


def _operation(spec: Endpoint, method: str, request: type[BaseModel], refs: dict[Any, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": spec.name if len(spec.methods) == 1 else f"{spec.name}_{method.lower()}",
        "summary": spec.summary,
        "security": [{"firebase": []}],
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": refs[spec.response]}}},
            **{
                code: {"description": text, "content": {"application/json": {"schema": refs[ErrorEnvelope]}}}
                for code, text in _ERRORS.items()
            },
        },
    }
    if spec.roles is not None:
        operation["x-roles"] = sorted(spec.roles)
    if method == "GET":
        operation["parameters"] = _query_parameters(request)
    else:
        operation["parameters"] = [
            {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"}}
        ]
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": refs[request]}}}
    return operation


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


if __name__ == "__main__":
    import json
    import sys

    import main

    for name in main.__all__:
        getattr(main, name)
    json.dump(document(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
