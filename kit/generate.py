"""`make clients`: typed clients from openapi.json, for the control center (TypeScript) and the Flutter apps (Dart).

    python -m kit.generate [--out clients] [--only typescript|dart] [--openapi openapi.json]

TypeScript: openapi-typescript (npm, pinned in package.json) writes `schema.ts`; `index.ts` (kit/typescript) wraps it
in openapi-fetch; `tsc` type-checks the package, its example included. Dart: OpenAPI Generator's `dart` generator,
from PyPI's `openapi-generator-cli` (pinned in requirements-tools.txt, installed in .local/tools-venv by the Makefile),
which bundles the generator's jar and runs it on the installed Java. No Dart SDK is installed here, so the Dart client
is generated and its API classes checked, not compiled.

Nothing generated is committed: `clients/` is ignored and made again from the committed document.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE_BIN = ROOT / "node_modules" / ".bin"
TOOLS_VENV = ROOT / ".local" / "tools-venv"
OPENAPI_GENERATOR = TOOLS_VENV / "bin" / "openapi-generator-cli"
TEMPLATES = Path(__file__).resolve().parent / "typescript"
DART_PACKAGE = "halo_api"
TS_PACKAGE = "@halo-bestie/api-client"


class ToolMissing(RuntimeError):
    """A tool the generation needs is not installed (the message says which and how to get it)."""


def typescript(document: Path, out: Path) -> Path:
    """`out/typescript`: schema.ts, index.ts, examples/, package.json and tsconfig.json."""
    target = out / "typescript"
    _need(NODE_BIN / "openapi-typescript", "run `make bootstrap` (npm ci)")
    _fresh(target)
    _run([str(NODE_BIN / "openapi-typescript"), str(document), "--output", str(target / "schema.ts")])
    shutil.copy(TEMPLATES / "index.ts", target / "index.ts")
    shutil.copytree(TEMPLATES / "examples", target / "examples")
    (target / "package.json").write_text(json.dumps(_package_json(document), indent=2) + "\n")
    (target / "tsconfig.json").write_text(json.dumps(_TSCONFIG, indent=2) + "\n")
    return target


def typecheck(target: Path, *, emit: bool = False) -> None:
    """`tsc` over the generated package (strict). With `emit`, JavaScript lands in `target/dist`."""
    _need(NODE_BIN / "tsc", "run `make bootstrap` (npm ci)")
    _run([str(NODE_BIN / "tsc"), "--project", str(target), *([] if emit else ["--noEmit"])])


def dart(document: Path, out: Path) -> Path:
    """`out/dart`: a Dart package (`halo_api`) with one `<Tag>Api` class per tag (`DefaultApi` while untagged)."""
    target = out / "dart"
    if shutil.which("java") is None:
        raise ToolMissing("java is not installed: no Dart client can be generated (Debian: openjdk-17-jre-headless)")
    _need(OPENAPI_GENERATOR, "run `make bootstrap` (it installs openapi-generator-cli into .local/tools-venv)")
    _fresh(target)
    properties = {
        "pubName": DART_PACKAGE,
        "pubVersion": _version(document),
        "pubDescription": "Halo Bestie HTTP API, generated from openapi.json by make clients",
        # An enum value a newer backend adds reads as unknownDefaultOpenApi instead of failing (docs/contract.md).
        "enumUnknownDefaultCase": "true",
    }
    _run([
        str(OPENAPI_GENERATOR), "generate", "--input-spec", str(document), "--generator-name", "dart",
        "--output", str(target), "--additional-properties", ",".join(f"{k}={v}" for k, v in properties.items()),
        "--global-property", "apiTests=false,modelTests=false",
    ])  # fmt: skip
    return target


def expected_dart_apis(document: dict) -> dict[str, set[str]]:
    """What the Dart generator makes of the document: `{ApiClass: {method, ...}}`, one class per first tag
    (`DefaultApi` for untagged operations), one method per operationId in lowerCamelCase."""
    apis: dict[str, set[str]] = {}
    for methods in document["paths"].values():
        for operation in methods.values():
            tags = operation.get("tags") or ["default"]
            apis.setdefault(_camel(tags[0], upper=True) + "Api", set()).add(_camel(operation["operationId"]))
    return apis


def dart_apis(target: Path) -> dict[str, set[str]]:
    """The API classes the generated Dart package declares, with their public methods (`WithHttpInfo` left out)."""
    found: dict[str, set[str]] = {}
    for source in sorted((target / "lib" / "api").glob("*_api.dart")):
        text = source.read_text()
        for match in re.finditer(r"^class (\w+Api) \{", text, flags=re.MULTILINE):
            methods = set(re.findall(r"^  Future<[^\n]*?> (\w+)\(", text, flags=re.MULTILINE))
            found[match.group(1)] = {name for name in methods if not name.endswith("WithHttpInfo")}
    return found


def _camel(name: str, *, upper: bool = False) -> str:
    words = [word for word in re.split(r"[^A-Za-z0-9]+", name) if word]
    camel = "".join(word[:1].upper() + word[1:] for word in words)
    return camel if upper else camel[:1].lower() + camel[1:]


def _version(document: Path) -> str:
    version = str(json.loads(document.read_text()).get("info", {}).get("version", "1"))
    return version if re.fullmatch(r"\d+\.\d+\.\d+", version) else f"{version.split('.', maxsplit=1)[0]}.0.0"


def _package_json(document: Path) -> dict[str, object]:
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    return {
        "name": TS_PACKAGE,
        "version": _version(document),
        "private": True,
        "description": "Halo Bestie HTTP API for TypeScript, generated from openapi.json (make clients): do not edit",
        "type": "module",
        "main": "dist/index.js",
        "types": "dist/index.d.ts",
        "dependencies": {"openapi-fetch": pinned["openapi-fetch"]},
    }


_TSCONFIG = {
    "compilerOptions": {
        "target": "ES2022",
        "module": "NodeNext",
        "moduleResolution": "NodeNext",
        "lib": ["ES2022", "DOM"],
        # For the example, a Node script; the control center's own build leaves it out.
        "types": ["node"],
        "strict": True,
        "noUncheckedIndexedAccess": True,
        "noImplicitOverride": True,
        "exactOptionalPropertyTypes": False,
        "declaration": True,
        "outDir": "dist",
        "rootDir": ".",
    },
    "include": ["*.ts", "examples/*.ts"],
}


def _fresh(target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)


def _need(tool: Path, remedy: str) -> None:
    if not tool.exists():
        raise ToolMissing(f"{tool.relative_to(ROOT)} is missing: {remedy}")


def _run(argv: Sequence[str]) -> None:
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False,
                          env=_quiet_env())  # fmt: skip
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, argv, done.stdout, done.stderr)


def _quiet_env() -> dict[str, str]:
    import os

    return {**os.environ, "NO_UPDATE_NOTIFIER": "1", "npm_config_update_notifier": "false"}


def main(args: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--openapi", type=Path, default=ROOT / "openapi.json")
    parser.add_argument("--out", type=Path, default=ROOT / "clients")
    parser.add_argument("--only", choices=("typescript", "dart"))
    options = parser.parse_args(args)
    document = options.openapi.resolve()
    try:
        if options.only in (None, "typescript"):
            target = typescript(document, options.out)
            typecheck(target)
            print(f"TypeScript client: {target} (type-checked with tsc)")
        if options.only in (None, "dart"):
            target = dart(document, options.out)
            apis = dart_apis(target)
            print(f"Dart client:       {target} ({', '.join(sorted(apis))}; not compiled: no Dart SDK here)")
    except ToolMissing as exc:
        print(f"!! {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"!! {' '.join(exc.cmd[:2])} failed ({exc.returncode}):\n{exc.stdout}\n{exc.stderr}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
