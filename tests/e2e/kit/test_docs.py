"""/docs on the local gateway: a browsable reference of the HTTP API (Redoc, built offline from node_modules) that
describes the operations the gateway really serves, links /openapi.json and lists the JSON Schemas under contract/,
which /contract/... serves."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.test import Client

from emulators.gateway import Gateway
from emulators.stack import LocalStack


@pytest.fixture(scope="module")
def served(stack: LocalStack) -> tuple[requests.Response, dict[str, Any]]:
    document: dict[str, Any] = requests.get(f"{stack.functions_url}/openapi.json", timeout=10).json()
    return requests.get(f"{stack.functions_url}/docs", timeout=180), document


def test_docs_describe_every_operation_the_gateway_serves(served: tuple[requests.Response, dict[str, Any]]) -> None:
    page, document = served

    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert len(document["paths"]) > 20
    for path, methods in document["paths"].items():
        assert path in html, path
        for operation in methods.values():
            summary = operation["summary"]
            assert _text(summary)[:60] in _text(html), (path, summary)
    assert 'href="/openapi.json"' in html


def test_docs_need_no_network(served: tuple[requests.Response, dict[str, Any]]) -> None:
    html = served[0].text

    assert not re.findall(r"""<(?:script|link)[^>]+(?:src|href)=["']https?://""", html)
    assert '"disableTelemetry":true' in html


def test_docs_say_when_no_schema_is_published_yet(tmp_path: Path) -> None:
    html = Client(Gateway(contract_dir=tmp_path / "contract")).get("/docs").get_data(as_text=True)

    assert "none published yet (contract/firestore/)" in html
    assert "none published yet (contract/push/)" in html


def test_docs_list_the_schemas_under_contract_and_the_gateway_serves_them(tmp_path: Path) -> None:
    contract = tmp_path / "contract"
    schemas = {
        "firestore/sessions.json": {"title": "sessions/{id}", "type": "object"},
        "firestore/offers.json": {"title": "mitras/{uid}/offers/{id}", "type": "object"},
        "push/offer.json": {"title": "offer push", "type": "object"},
    }
    for name, schema in schemas.items():
        (contract / name).parent.mkdir(parents=True, exist_ok=True)
        (contract / name).write_text(json.dumps(schema))
    (tmp_path / "secret.json").write_text("{}")
    gateway = Client(Gateway(contract_dir=contract))

    html = gateway.get("/docs").get_data(as_text=True)
    index = gateway.get("/contract/").get_json()

    for name in schemas:
        assert f'href="/contract/{name}"' in html, name
    assert "none published yet" not in html
    assert index == {"files": [f"/contract/{name}" for name in sorted(schemas)]}
    for name, schema in schemas.items():
        reply = gateway.get(f"/contract/{name}")
        assert (reply.status_code, reply.get_json()) == (200, schema)
        assert reply.headers["Content-Type"].startswith("application/json")
    assert gateway.get("/contract/firestore/missing.json").status_code == 404
    assert gateway.get("/contract/../secret.json").status_code == 404
    assert gateway.get("/contract/%2e%2e/secret.json").status_code == 404


def _text(html: str) -> str:
    """Words only: Redoc renders a summary's Markdown (and escapes quotes), so compare the words."""
    words = re.sub(r"<[^>]+>", " ", html)
    words = words.replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&").replace("&#39;", "'")
    return " ".join(re.sub(r"[`*_]", "", words).split())


def test_docs_link_every_committed_document_and_push_schema(
    served: tuple[requests.Response, dict[str, Any]], stack: LocalStack
) -> None:
    from kit import contract

    html = served[0].text
    for name, schema in contract.schemas().items():
        assert f'href="/contract/{name}"' in html, name
        reply = requests.get(f"{stack.functions_url}/contract/{name}", timeout=10)
        assert (reply.status_code, reply.json()) == (200, schema)
