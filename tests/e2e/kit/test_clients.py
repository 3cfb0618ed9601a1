"""`make clients`, tested: both clients generated from the committed openapi.json, exactly as `make clients` does.

TypeScript (control center): type-checked by tsc, refused by tsc when misused, and compiled; its example signs the
seeded admin in on the Auth emulator (Firebase's REST signInWithPassword) and reads admin_dashboard from the stack.
Dart (Flutter apps): the API classes and one method per operation are there. No Dart SDK exists on this machine, so
the Dart client is not compiled (the run's summary says so); without Java it cannot be generated: skipped loudly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from emulators.simulator import App, AuthEmulator
from emulators.stack import LocalStack
from kit import generate
from tests.e2e.kit.conftest import dart_checked, skip_loudly

ROOT = Path(__file__).resolve().parents[3]
DOCUMENT = ROOT / "openapi.json"
ADMIN = ("admin@halo.local", "halo-dev-admin")
SEEDED_MITRAS = 3


@pytest.fixture(scope="module")
def out() -> Iterator[Path]:
    """Inside the checkout (under the ignored .local), so the generated package finds openapi-fetch in node_modules
    as it does in clients/."""
    (ROOT / ".local").mkdir(exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="clients-test-", dir=ROOT / ".local"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def typescript_client(out: Path) -> Path:
    target = generate.typescript(DOCUMENT, out)
    generate.typecheck(target, emit=True)
    return target


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DOCUMENT.read_text())
    return loaded


def test_the_typescript_client_types_every_operation_of_the_document(
    typescript_client: Path, document: dict[str, Any]
) -> None:
    schema = (typescript_client / "schema.ts").read_text()

    for path, methods in document["paths"].items():
        assert f'"{path}": {{' in schema, path
        for method in methods:
            assert f'{method}: operations["{methods[method]["operationId"]}"];' in schema, (path, method)
    assert (typescript_client / "dist" / "index.js").exists()
    assert (typescript_client / "dist" / "index.d.ts").exists()


def test_tsc_refuses_code_that_misuses_the_client(typescript_client: Path) -> None:
    """The types are real: a path the API does not have, and a figure read as the wrong type, do not compile."""
    misuse = typescript_client / "examples" / "misuse.ts"
    misuse.write_text(
        'import { createHaloClient } from "../index.js";\n'
        'const halo = createHaloClient({ baseUrl: "http://127.0.0.1:5001" });\n'
        'await halo.GET("/no_such_function");\n'
        'const { data } = await halo.GET("/admin_dashboard");\n'
        "const online: string | undefined = data?.mitras.online;\n"
        "console.log(online);\n"
    )
    try:
        with pytest.raises(subprocess.CalledProcessError) as refused:
            generate.typecheck(typescript_client)
    finally:
        misuse.unlink()

    report = refused.value.stdout
    errors = [line for line in report.splitlines() if "examples/misuse.ts(" in line and ": error TS" in line]
    assert [line.split("misuse.ts(")[1].split(",")[0] for line in errors] == ["3", "5"], report
    assert "TS2322: Type 'number | undefined' is not assignable to type 'string | undefined'" in report
    generate.typecheck(typescript_client)


def test_a_script_on_the_typescript_client_signs_an_admin_in_and_reads_the_dashboard(
    stack: LocalStack, auth: AuthEmulator, typescript_client: Path
) -> None:
    node = shutil.which("node")
    assert node, "node runs the Auth emulator, so it is always installed"
    env = _stack_env(stack)
    done = subprocess.run(
        [node, str(typescript_client / "dist" / "examples" / "admin_dashboard.js")],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    dashboard = json.loads(done.stdout)
    direct = App(stack.functions_url, auth.sign_in_with_email(*ADMIN)).get("admin_dashboard")
    assert direct.status == 200
    assert set(dashboard) == set(direct.body)
    assert dashboard["day"] == direct.body["day"]
    assert dashboard["mitras"]["active"] == direct.body["mitras"]["active"] >= SEEDED_MITRAS
    assert isinstance(dashboard["requests_today"]["total"], int)
    assert dashboard["revenue_today"]["currency"] == "IDR"
    as_of = datetime.fromisoformat(dashboard["as_of"])
    assert abs(datetime.now(UTC) - as_of) < timedelta(minutes=1)
    assert f"of {dashboard['mitras']['active']} mitras online" in done.stderr


def test_the_script_fails_when_the_dashboard_refuses(stack: LocalStack, typescript_client: Path) -> None:
    """The example reports a refusal (here: a wrong password) instead of printing figures."""
    node = shutil.which("node")
    assert node
    env = {**_stack_env(stack), "HALO_ADMIN_PASSWORD": "not-the-password"}
    done = subprocess.run(
        [node, str(typescript_client / "dist" / "examples" / "admin_dashboard.js")],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert done.returncode != 0
    assert done.stdout == ""
    assert "sign-in refused: 400" in done.stderr


def test_the_dart_client_has_an_api_class_and_a_method_for_every_operation(
    request: pytest.FixtureRequest, out: Path, document: dict[str, Any]
) -> None:
    if shutil.which("java") is None:
        skip_loudly("Java", "the Dart client's generation (OpenAPI Generator runs on Java)", request.node.nodeid)
    target = generate.dart(DOCUMENT, out)

    assert generate.dart_apis(target) == generate.expected_dart_apis(document)
    assert "name: 'halo_api'" in (target / "pubspec.yaml").read_text()
    exports = (target / "lib" / "api.dart").read_text()
    for api in generate.expected_dart_apis(document):
        assert f"part 'api/{_snake(api)}.dart';" in exports, api
    models = {path.stem for path in (target / "lib" / "model").glob("*.dart")}
    assert {"dashboard", "mitra_figures", "error_envelope"} <= models
    assert "unknownDefaultOpenApi" in (target / "lib" / "model" / "mitra_status_change.dart").read_text()
    dart_checked(request.node.nodeid)


def _stack_env(stack: LocalStack) -> dict[str, str]:
    return {
        **os.environ,
        "HALO_FUNCTIONS_URL": stack.functions_url,
        "HALO_AUTH_URL": f"http://127.0.0.1:{stack.ports.auth}",
    }


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
