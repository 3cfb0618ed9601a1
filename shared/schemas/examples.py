"""An example of every request and reply model, for the OpenAPI document (functions/openapi.py) and so for /docs and
the generated clients. A model's own `examples` (json_schema_extra) wins; otherwise the example is built from its
JSON Schema with plausible values by field name (ids, names, times, money in rupiah), the first value of an enum or
union, a request's required fields only. tests/unit/test_openapi_examples.py checks each against its model."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel

_NONE = object()
_NAMESPACE = uuid.UUID("6d1c3f0e-9a57-4b8e-8f4e-0b5a1c2d3e4f")
AT = "2026-01-05T10:30:00+07:00"
DAY = "2026-01-05"
# Plausible values by field name, where the schema allows them.
_BY_NAME: dict[str, Any] = {
    "display_name": "Ayu",
    "client_name": "Ayu",
    "mitra_name": "Sari",
    "client_alias": "Bestie #4821",
    "alias": "Bestie #4821",
    "phone": "+6281234567890",
    "email": "ayu@example.com",
    "text": "Halo, aku mau cerita sebentar.",
    "reason": "The client asked for a copy of their data by email.",
    "note": "Called the client; they are safe and talking to a counsellor.",
    "invoice_url": "https://checkout-staging.xendit.co/web/6599a1c2d3e4f5a6b7c8d9e0",
    "token": "fcm-token-0123456789abcdef:APA91bExample",
    "tier_id": "t30",
    "currency": "IDR",
    "price": 50_000,
    "amount": 50_000,
    "minutes": 30,
    "duration_s": 1800,
    "seq": 12,
    "delivered_seq": 12,
    "read_seq": 11,
    "next_before": 1,
    "event_id": 1,
    "version": 1,
    "kind": "paid",
    "sender_role": "client",
    "presence": "online",
    "from_status": "offline",
    "to_status": "online",
    "q": "ayu",
    "next_cursor": None,
}
# Overrides where a name means different things in different models.
_BY_MODEL: dict[str, dict[str, Any]] = {
    "SessionEnded": {"status": "closing"},
    "AdminSessionEnded": {"status": "closed"},
    "PairingCancelReply": {"status": "cancelled"},
    "ExtensionState": {"status": "requested"},
    "SessionSummary": {"status": "active"},
    "AdminSession": {"status": "active"},
    "ConfigChange": {"settings": {"free_trial_minutes": 15}},
    "ClientProfileUpdate": {"anonymous": True},
    "PairingRequestBody": {"tier_id": "t30"},
    "StatusChange": {"reason": "went_online"},
}


def example(model: type[BaseModel], *, request: bool) -> Any:
    """An example of `model`: a request's required fields, or a whole reply."""
    extra = model.model_json_schema()
    if extra.get("examples"):
        return extra["examples"][0]
    return _value(extra, extra.get("$defs", {}), name="", model=model.__name__, request=request)


def _value(schema: dict[str, Any], defs: dict[str, Any], *, name: str, model: str, request: bool) -> Any:
    if "$ref" in schema:
        key = schema["$ref"].rsplit("/", 1)[-1]
        return _value(defs[key], defs, name=name, model=key, request=request)
    fixed = schema.get("const", (schema.get("enum") or [_NONE])[0])
    options = [option for option in schema.get("oneOf", schema.get("anyOf", [])) if option.get("type") != "null"]
    if fixed is not _NONE or options:
        return fixed if fixed is not _NONE else _value(options[0], defs, name=name, model=model, request=request)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return _object(schema, defs, model=model, request=request)
    if kind == "array":
        return [_value(schema.get("items", {}), defs, name=name, model=model, request=request)]
    for known in (_BY_NAME.get(name), schema.get("default")):
        if known is not None:
            return known
    return _scalar(schema, name)


def _object(schema: dict[str, Any], defs: dict[str, Any], *, model: str, request: bool) -> dict[str, Any]:
    required = set(schema.get("required", []))
    overrides = _BY_MODEL.get(model, {})
    out: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        if name in overrides:
            out[name] = overrides[name]
        elif request and name not in required:
            continue
        elif name in _BY_NAME and _BY_NAME[name] is None:
            out[name] = None
        else:
            out[name] = _value(prop, defs, name=name, model=model, request=request)
    return out


def _scalar(schema: dict[str, Any], name: str) -> Any:
    kind, form = schema.get("type"), schema.get("format")
    if kind == "string" and (form == "uuid" or name.endswith("_id") or name == "id"):
        return str(uuid.uuid5(_NAMESPACE, name or "id"))
    if kind == "integer":
        return int(schema.get("minimum", 1))
    return {"date-time": AT, "date": DAY}.get(form or "") or {"string": "text", "number": 0.5, "boolean": True}.get(
        kind or ""
    )
