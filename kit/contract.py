"""The JSON Schemas of what the apps read outside the HTTP API, generated from the models the backend builds it with:
the Firestore documents (shared/domain/documents.py) into contract/firestore/, the push payloads' FCM `data`
(shared/domain/pushes.py) into contract/push/. Committed; `make contract` (and `make openapi`) regenerate them and
tests/unit/test_contract_schemas.py fails when they drift. The gateway serves them at /contract/... and /docs links
them.

    python -m kit.contract [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from shared.domain.documents import DELETED_MARK, DOCUMENTS
from shared.domain.pushes import PUSHES

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "contract"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
# Each document's file in contract/firestore/, by its path pattern (shared.domain.documents.DOCUMENTS).
DOCUMENT_FILES = {
    "pairing_requests/*": ("pairing_requests", "pairing_requests/{request_id}"),
    "mitras/*/offers/*": ("offers", "mitras/{mitra_uid}/offers/{request_id}"),
    "sessions/*": ("sessions", "sessions/{session_id}"),
    "sessions/*/messages/*": ("messages", "sessions/{session_id}/messages/{message_id}"),
    "payments/*": ("payments", "payments/{transaction_id}"),
    "admin_alerts/*": ("admin_alerts", "admin_alerts/{alert_id}"),
}


def schemas() -> dict[str, dict[str, Any]]:
    """Every schema, by its path under contract/ (`firestore/sessions.json`)."""
    out: dict[str, dict[str, Any]] = {}
    for pattern, model in DOCUMENTS.items():
        name, path = DOCUMENT_FILES[pattern]
        schema = _schema(model, f"firestore/{name}.json")
        schema["x-firestore-path"] = path
        schema["description"] = (
            f"{schema.get('description', '')}\n\nEvery field may be absent: a document is written in steps, each "
            "setting some fields (a Firestore merge). Timestamps are Firestore Timestamps."
        ).strip()
        out[f"firestore/{name}.json"] = schema
    for push_model in PUSHES:
        kind = push_model.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]
        schema = _schema(push_model, f"push/{kind}.json")
        schema["description"] = (
            f"{schema.get('description', '')}\n\nThe FCM `data` of a push of type `{kind}` (every value a string). "
            "The lock screen's title and body travel beside it, in FCM `notification`."
        ).strip()
        out[f"push/{kind}.json"] = schema
    return out


def _schema(model: type[BaseModel], path: str) -> dict[str, Any]:
    schema = _without_deleted(model.model_json_schema(by_alias=True))
    return {"$schema": DIALECT, "$id": f"contract/{path}", **schema}


def _without_deleted(node: Any) -> Any:
    """What the apps read: a removable field's `{"$delete": true}` is how the backend removes it, dropped."""
    if isinstance(node, dict):
        # Neither is what an app reads: an unset field is absent (not null), and fields may be added (docs/contract.md).
        cleaned = {
            key: _without_deleted(value)
            for key, value in node.items()
            if not (key == "additionalProperties" and value is False) and not (key == "default" and value is None)
        }
        if isinstance(cleaned.get("anyOf"), list):
            kept = [option for option in cleaned["anyOf"] if not (isinstance(option, dict) and DELETED_MARK in option)]
            cleaned["anyOf"] = kept
        return cleaned
    if isinstance(node, list):
        return [_without_deleted(item) for item in node]
    return node


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write(out: Path = CONTRACT) -> list[Path]:
    """Writes every schema under `out`, replacing what contract/firestore and contract/push held."""
    generated = schemas()
    for folder in {path.split("/", 1)[0] for path in generated}:
        shutil.rmtree(out / folder, ignore_errors=True)
    written = []
    for relative, schema in sorted(generated.items()):
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(schema))
        written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=CONTRACT)
    args = parser.parse_args()
    for path in write(args.out):
        print(path.relative_to(args.out))


if __name__ == "__main__":
    main()
