"""Writes `infra/functions.auto.json`, the manifest as Terraform reads it, so the deployment cannot drift from code.

Run from the repository root: `python -m infra.generate` (or `make infra`). Every field of a manifest entry except
its Python module flows through, so a field added to `FunctionSpec` or `QueueSpec` reaches Terraform without an
edit here.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from functions import manifest

OUTPUT = Path(__file__).resolve().parent / "functions.auto.json"
# Where the code lives is main.py's business; the deployment addresses every function by name.
_NOT_DEPLOYED = frozenset({"name", "module"})


def _fields(spec: Any) -> dict[str, Any]:
    return {key: value for key, value in dataclasses.asdict(spec).items() if key not in _NOT_DEPLOYED}


def deployment() -> dict[str, Any]:
    return {
        "functions": {spec.name: _fields(spec) for spec in manifest.FUNCTIONS},
        "queues": {queue.name: _fields(queue) for queue in manifest.QUEUES},
        "topics": manifest.topics(),
    }


def render() -> str:
    return json.dumps(deployment(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
