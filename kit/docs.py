"""The browsable reference the local gateway serves at /docs: Redoc, built offline by Redocly's CLI (npm, pinned in
package.json; its Redoc bundle inlined, nothing fetched from a CDN) from the gateway's own OpenAPI document, with
links to the machine-readable files: /openapi.json, and the JSON Schemas of the Firestore documents and push
payloads that exist under contract/ (served at /contract/...).

A page is built once per document and list of schemas, in .local/docs (a few seconds); `make docs` builds the
current one ahead, and the gateway builds it on the first request otherwise.

    python -m kit.docs [--out FILE]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REDOCLY = ROOT / "node_modules" / ".bin" / "redocly"
CONTRACT = ROOT / "contract"
CACHE = ROOT / ".local" / "docs"
# The folders of contract/ the page lists first, with what they hold; any other *.json there is listed after them.
SCHEMA_GROUPS = {
    "firestore": "Firestore documents the apps listen to (JSON Schema)",
    "push": "Push payloads, FCM `data` (JSON Schema)",
}
_building = threading.Lock()
# Part of a built page's name: a change to how pages are built (below) builds them again.
_RECIPE = b"redocly build-docs --inlineBundle; CDN images emptied; 1\n"


class DocsUnavailable(RuntimeError):
    """The page cannot be built here (Redocly's CLI missing or failing); the message says why."""


def contract_files(contract_dir: Path = CONTRACT) -> list[str]:
    """Every JSON file under contract/, as the path after /contract/ (`firestore/sessions.json`), sorted."""
    if not contract_dir.is_dir():
        return []
    return sorted(
        path.relative_to(contract_dir).as_posix()
        for path in contract_dir.rglob("*.json")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(contract_dir).parts)
    )


def described(document: dict[str, Any], schemas: list[str]) -> dict[str, Any]:
    """The document with the links to the machine-readable files appended to its description."""
    page = copy.deepcopy(document)
    info = page.setdefault("info", {})
    info["description"] = (info.get("description", "").rstrip() + "\n\n" + _links(schemas)).lstrip()
    return page


def _links(schemas: list[str]) -> str:
    lines = [
        "## Machine-readable",
        "",
        "- [openapi.json](/openapi.json): this API (OpenAPI 3.1). `make clients` generates the control center's"
        " TypeScript client and the Flutter apps' Dart client from it.",
    ]
    grouped: dict[str, list[str]] = {}
    for path in schemas:
        folder = path.split("/", 1)[0] if "/" in path else ""
        grouped.setdefault(folder if folder in SCHEMA_GROUPS else "", []).append(path)
    for folder, title in SCHEMA_GROUPS.items():
        files = grouped.get(folder, [])
        listed = ", ".join(f"[{Path(path).stem}](/contract/{path})" for path in files)
        lines.append(f"- {title}: {listed or f'none published yet (contract/{folder}/)'}")
    if grouped.get(""):
        lines.append("- Other schemas: " + ", ".join(f"[{path}](/contract/{path})" for path in grouped[""]))
    lines += ["", "How the API may change (unknown request fields are ignored, replies only grow): docs/contract.md."]
    return "\n".join(lines)


def page(document: dict[str, Any], *, contract_dir: Path = CONTRACT, cache: Path = CACHE) -> Path:
    """The built page for this document and the schemas contract/ holds now (built when not yet in the cache)."""
    source = json.dumps(described(document, contract_files(contract_dir)), sort_keys=True).encode()
    built = cache / f"api-{hashlib.sha256(_RECIPE + source).hexdigest()[:16]}.html"
    with _building:
        if not built.exists():
            build(source, built)
            _forget_old_pages(cache, keep=built)
    return built


def _forget_old_pages(cache: Path, keep: Path, count: int = 8) -> None:
    """Each document and schema list is a page of ~2.6 MB: only the most recent few are kept."""
    pages = sorted(cache.glob("api-*.html"), key=_modified, reverse=True)
    for old in pages[count:]:
        if old != keep:
            old.unlink(missing_ok=True)


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # another process forgot it first
        return 0.0


def build(source: bytes, output: Path) -> None:
    """Redocly's build-docs, its Redoc bundle inlined (`--inlineBundle`: the page needs no network)."""
    if not REDOCLY.exists():
        raise DocsUnavailable(f"{REDOCLY.relative_to(ROOT)} is missing: run `make bootstrap` (npm ci)")
    output.parent.mkdir(parents=True, exist_ok=True)
    spec = output.with_suffix(f".{os.getpid()}.json")
    partial = output.with_suffix(f".{os.getpid()}.partial.html")
    spec.write_bytes(source)
    try:
        done = subprocess.run(
            [str(REDOCLY), "build-docs", str(spec), "--inlineBundle", "--output", str(partial)],
            cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
            env={**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"},
        )  # fmt: skip
        if done.returncode != 0 or not partial.exists():
            raise DocsUnavailable(f"redocly build-docs failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        partial.write_text(_offline(partial.read_text()))
        partial.replace(output)
    finally:
        spec.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)


# The inlined Redoc still names images on Redocly's CDN (its "API docs by" logo, named icons): an empty image instead,
# so the page asks nothing of the network (a browser test checks every request it makes).
_CDN_URL = re.compile(r"https://cdn\.redoc(?:ly\.com|\.ly)/[^`'\"\s)]*")
_EMPTY_IMAGE = "data:image/svg+xml,%3Csvg%20xmlns=%22http://www.w3.org/2000/svg%22/%3E"


def _offline(html: str) -> str:
    return _CDN_URL.sub(_EMPTY_IMAGE, html)


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the /docs page of the local gateway.")
    parser.add_argument("--out", type=Path, help="also copy the page here")
    options = parser.parse_args(args)
    import main as functions_main
    from functions.openapi import document

    for name in functions_main.__all__:
        getattr(functions_main, name)
    try:
        built = page(document())
    except DocsUnavailable as exc:
        print(f"!! {exc}", file=sys.stderr)
        return 1
    if options.out:
        options.out.write_bytes(built.read_bytes())
    print(f"/docs page: {built} ({len(contract_files())} schemas under contract/ linked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
