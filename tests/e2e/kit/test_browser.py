"""CORS (and /docs) from a real browser: headless Chromium (Debian's package, driven by playwright-core) loads the
/_kit/ page, which signs the seeded admin in on the Auth emulator and calls admin_dashboard on another origin.

The API is a second gateway on the same stack (same database, emulators and functions), started as a developer would
start theirs for a control center on a dev server: `HALO_CORS_ORIGINS` names the page's origin, here the stack's own
gateway, which serves the page. So every call the page makes to the API is a real cross-origin request, preflight
included (it sends `Authorization`). The same page from an origin the setting does not name gets nothing.
Without Chromium the tests are skipped, loudly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from emulators.process import ManagedProcess, free_port
from emulators.simulator import App, AuthEmulator
from emulators.stack import LocalStack
from tests.e2e.kit.conftest import chromium, skip_loudly

ROOT = Path(__file__).resolve().parents[3]
DRIVER = Path(__file__).with_name("browser_dashboard.mjs")
PAGE_DRIVER = Path(__file__).with_name("browser_page.mjs")
ADMIN = ("admin@halo.local", "halo-dev-admin")
SEEDED_MITRAS = 3


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> str:
    found = chromium()
    if found is None:
        skip_loudly("Chromium", "the browser test of CORS and the /_kit/ page", request.node.nodeid)
    assert found is not None
    return found


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> Iterator[str]:
    """A second gateway whose `HALO_CORS_ORIGINS` allows exactly the stack's gateway, where the page is served."""
    port = free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    env = {**os.environ, **stack.env(), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
           "HALO_CORS_ORIGINS": stack.functions_url}  # fmt: skip
    process = ManagedProcess(
        "gateway-cors",
        [str(gunicorn), "--no-control-socket", "--worker-class", "gthread", "--threads", "8", "--workers", "1",
         "--bind", f"127.0.0.1:{port}", "--timeout", "120", "emulators.gateway:app"],
        log_dir=stack.log_dir, env=env, cwd=ROOT,
    ).start()  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_ready(lambda: _answers(f"{url}/openapi.json"), timeout=90)
        yield url
    finally:
        process.stop()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _drive(browser: str, page: str, screenshot: Path, driver: Path = DRIVER) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "node runs the Auth emulator, so it is always installed"
    done = subprocess.run(
        [node, str(driver), page, str(screenshot)], env={**os.environ, "CHROMIUM": browser},
        capture_output=True, text=True, timeout=90, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    shown: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return shown


def _leaves(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}.{key}" if prefix else key
        found.update(_leaves(item, name) if isinstance(item, dict) else {name: item})
    return found


def _figures(dashboard: dict[str, Any]) -> dict[str, Any]:
    """What the page shows as figures: every leaf but the day and the moment, which head the table, and the age of
    the oldest unpublished outbox row, which grows with the clock between two reads (the page shows it as well)."""
    moving = ("as_of", "day", "health.oldest_unpublished_s")
    return {name: value for name, value in _leaves(dashboard).items() if name not in moving}


def _display(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_a_page_on_an_allowed_origin_signs_the_admin_in_and_renders_the_dashboard(
    browser: str, stack: LocalStack, auth: AuthEmulator, api: str, tmp_path: Path
) -> None:
    page = f"{stack.functions_url}/_kit/?api={api}&auth=http://127.0.0.1:{stack.ports.auth}"
    screenshot = tmp_path / "dashboard.png"
    admin = App(api, auth.sign_in_with_email(*ADMIN))
    # Timers elsewhere in the run may change a figure while the browser works: look again until nothing moved.
    for _ in range(3):
        before = admin.get("admin_dashboard")
        shown = _drive(browser, page, screenshot)
        after = admin.get("admin_dashboard")
        if _figures(before.body) == _figures(after.body):
            break

    assert shown["state"] == "done", shown
    assert shown["origin"] == stack.functions_url != api, "the page and the API are on different origins"
    age = shown["figures"].pop("health.oldest_unpublished_s")
    assert age["value"] is None or isinstance(age["value"], int | float), age
    assert {name: figure["value"] for name, figure in shown["figures"].items()} == _figures(after.body)
    assert {name: figure["text"] for name, figure in shown["figures"].items()} == {
        name: _display(value) for name, value in _figures(after.body).items()
    }
    assert shown["figures"]["mitras.active"]["value"] >= SEEDED_MITRAS
    assert screenshot.stat().st_size > 10_000, "a screenshot of the rendered page"


def test_a_page_on_an_origin_the_setting_does_not_name_cannot_read_the_api(
    browser: str, stack: LocalStack, api: str, tmp_path: Path
) -> None:
    # The same page from the same server, but reached as `localhost`: another origin, not in HALO_CORS_ORIGINS.
    elsewhere = stack.functions_url.replace("127.0.0.1", "localhost")
    page = f"{elsewhere}/_kit/?api={api}&auth=http://127.0.0.1:{stack.ports.auth}"

    shown = _drive(browser, page, tmp_path / "refused.png")

    assert shown["origin"] == elsewhere
    assert shown["state"] == "failed", shown
    assert shown["message"] == "admin_dashboard: TypeError: Failed to fetch", "signed in, then the reply withheld"
    assert shown["figures"] == {}
    assert any("CORS" in line for line in shown["console"]), shown["console"]
    preflight = requests.options(
        f"{api}/admin_dashboard",
        headers={
            "Origin": elsewhere,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
        timeout=10,
    )
    assert preflight.status_code == 403
    assert not [name for name in preflight.headers if name.lower().startswith("access-control-")]


def test_the_docs_page_renders_the_operations_in_a_browser_fetching_nothing_elsewhere(
    browser: str, stack: LocalStack, tmp_path: Path
) -> None:
    document = requests.get(f"{stack.functions_url}/openapi.json", timeout=10).json()

    shown = _drive(browser, f"{stack.functions_url}/docs", tmp_path / "docs.png", PAGE_DRIVER)

    assert shown["errors"] == []
    assert [url for url in shown["requested"] if not url.startswith((stack.functions_url, "data:", "blob:"))] == []
    # Redoc shows each area (tag) with its description and the paths of its operations (their text behind "Show").
    first_tag = document["tags"][0]
    first_path = next(
        path
        for path, item in document["paths"].items()
        if any(op["tags"][0] == first_tag["name"] for op in item.values())
    )
    assert first_tag["description"] in shown["text"]
    assert first_path in shown["text"]
    assert "Halo Bestie backend" in shown["text"]
