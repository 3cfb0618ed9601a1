"""functions/manifest.py is the single source of truth: main.py, the gateway, the local Pub/Sub and Cloud Tasks
wiring and infra/ must all agree with it. No stack is needed; each check says how to repair what it finds.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, get_args

import pytest

import main
from emulators import pubsub_wiring
from emulators.gateway import Gateway
from emulators.stack import PROJECT, LocalStack, StackPorts
from functions import manifest
from infra import generate

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
NAMES = [spec.name for spec in manifest.FUNCTIONS]
QUEUE_NAMES = {queue.name for queue in manifest.QUEUES}

# Block headers (`resource "google_pubsub_topic" "topic" {`) name Terraform things, not deployed ones.
_BLOCK_HEADER = re.compile(r"^\s*(?:resource|data|variable|output|module|provider|dynamic)\s+\"[^{\n]*\{", re.M)
# A quoted HCL string, template interpolations included ("${var.region}-x" is one string).
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
# The shape of a function name: snake_case starting with one of the manifest's areas (`task_`, `pairing_`, ...).
_SNAKE_CASE = re.compile(r"([a-z][a-z0-9]*)(?:_[a-z0-9]+)+")
AREAS = {name.split("_", 1)[0] for name in NAMES}
# Resources whose `name`-like attributes would be a function, topic or queue name.
_NAMED_BY_MANIFEST = (
    "google_cloudfunctions2_function",
    "google_pubsub_topic",
    "google_pubsub_subscription",
    "google_cloud_tasks_queue",
    "google_cloud_scheduler_job",
)
_NAME_ATTRIBUTE = re.compile(r'^\s*(name|entry_point|pubsub_topic|topic|topic_name)\s*=\s*"([^"$]*)"\s*$', re.M)


def _tf_files() -> list[Path]:
    return sorted(INFRA.glob("*.tf"))


def _braced(text: str, opening: re.Pattern[str]) -> list[str]:
    """The bodies of the blocks whose opening line (ending in `{`) matches `opening`."""
    bodies = []
    for match in opening.finditer(text):
        depth, position = 1, match.end()
        while depth and position < len(text):
            depth += {"{": 1, "}": -1}.get(text[position], 0)
            position += 1
        bodies.append(text[match.end() : position - 1])
    return bodies


def _resource_bodies(text: str, resource_type: str) -> list[str]:
    return _braced(text, re.compile(rf'^resource\s+"{resource_type}"\s+"[^"]+"\s*\{{', re.M))


def _map_keys(text: str, local_name: str) -> set[str]:
    """The top-level keys of the map assigned to `local_name` in a locals block."""
    (body,) = _braced(text, re.compile(rf"^\s*{local_name}\s*=\s*\{{", re.M))
    keys, depth = set(), 0
    for line in body.splitlines():
        if depth == 0 and (key := re.match(r"\s*(\w+)\s*=", line)):
            keys.add(key.group(1))
        depth += line.count("{") - line.count("}")
    return keys


# -- (a) the generated file is current ------------------------------------------------------------------------


def test_functions_auto_json_is_what_the_generator_writes_now() -> None:
    written = generate.OUTPUT.read_text() if generate.OUTPUT.exists() else ""
    assert written == generate.render(), "infra/functions.auto.json is stale: run `make infra`"


# -- (b) main.py exports exactly the manifest --------------------------------------------------------------------


def test_main_exports_exactly_the_manifest() -> None:
    assert len(set(NAMES)) == len(NAMES), "a function name appears twice in functions/manifest.py"
    assert sorted(main.__all__) == sorted(NAMES), "main.__all__ must list every manifest function and nothing else"


@pytest.mark.parametrize("name", NAMES)
def test_every_manifest_function_resolves_on_main(name: str) -> None:
    function = getattr(main, name)
    assert inspect.isfunction(function), f"main.{name} is {type(function).__name__}, not a function"
    assert function.__name__ == name, (
        f"main.{name} resolves to {function.__name__}: the manifest names the wrong module"
    )


# -- (c) the local gateway mounts every function ---------------------------------------------------------------


def test_gateway_mounts_every_manifest_function() -> None:
    assert sorted(Gateway().apps) == sorted(NAMES)


# -- (d) the local Pub/Sub and Cloud Tasks wiring covers what the functions need -----------------------------------


def test_every_trigger_has_what_it_needs() -> None:
    for spec in manifest.FUNCTIONS:
        assert spec.trigger in get_args(manifest.Trigger), f"{spec.name}: unknown trigger {spec.trigger!r}"
        if spec.trigger == "pubsub":
            assert spec.topic, f"{spec.name} is a Pub/Sub function without a topic"
        if spec.trigger == "task":
            assert spec.queue in QUEUE_NAMES, f"{spec.name} uses queue {spec.queue!r}, which QUEUES does not declare"
        if spec.schedule:
            assert spec.trigger == "pubsub", f"{spec.name}: Cloud Scheduler ticks a topic, so a schedule needs pubsub"
            assert len(spec.schedule.split()) == 5, f"{spec.name}: schedule {spec.schedule!r} is not a 5-field cron"


def test_local_stack_wires_every_topic_and_queue(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    queues: dict[str, dict[str, Any]] = {}
    pubsub_calls: list[tuple[str, str, dict[str, Any] | None]] = []

    class RecordingScheduler:
        def __init__(self, **_: Any) -> None:
            pass

        def ensure_queue(self, *, queue: str, **retry: Any) -> None:
            queues[queue] = retry

    def record_pubsub_call(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, object]:
        pubsub_calls.append((method, url, body))
        return {}

    monkeypatch.setattr("shared.adapters.cloud_tasks.CloudTasksScheduler", RecordingScheduler)
    monkeypatch.setattr(pubsub_wiring, "_call", record_pubsub_call)
    stack = LocalStack(StackPorts.free(), tmp_path, progress=lambda _line: None)
    stack.platform = tmp_path  # as if the Google Cloud CLI emulators were installed: wire Pub/Sub too

    stack._wire()

    for queue in manifest.QUEUES:
        declared = {key: value for key, value in dataclasses.asdict(queue).items() if key != "name"}
        assert queues.get(queue.name) == declared, f"the local stack does not create queue {queue.name} as declared"
    topics = {url.rsplit("/topics/", 1)[1] for method, url, _ in pubsub_calls if method == "PUT" and "/topics/" in url}
    pushes = {
        (body["topic"].rsplit("/", 1)[1], body["pushConfig"]["pushEndpoint"])
        for _, url, body in pubsub_calls
        if body and "/subscriptions/" in url
    }
    for spec in manifest.FUNCTIONS:
        if spec.trigger == "pubsub" and spec.topic:
            assert spec.topic in topics, f"the local stack does not create topic {spec.topic}"
            endpoint = pubsub_wiring.push_endpoint(stack.functions_url, spec.name, PROJECT, spec.topic)
            assert (spec.topic, endpoint) in pushes, f"no push subscription delivers {spec.topic} to {spec.name}"


# -- (e) Terraform reads the manifest and spells no name of its own --------------------------------------------


def test_terraform_reads_functions_auto_json() -> None:
    text = "\n".join(path.read_text() for path in _tf_files())
    assert 'jsondecode(file("${path.module}/functions.auto.json"))' in text
    for resource, collection in (
        ("google_cloudfunctions2_function", "local.functions"),
        ("google_pubsub_topic", "local.topics"),
        ("google_cloud_tasks_queue", "local.queues"),
        ("google_cloud_scheduler_job", "local.scheduled_functions"),
    ):
        bodies = _resource_bodies(text, resource)
        assert bodies, f"no {resource} in infra/"
        assert any(f"for_each = {collection}" in body for body in bodies), f"{resource} must iterate {collection}"


def test_terraform_sizes_and_guards_every_trigger_class() -> None:
    text = (INFRA / "functions.tf").read_text()
    triggers = set(get_args(manifest.Trigger))
    assert _map_keys(text, "trigger_class") == triggers, "infra/functions.tf: size every trigger class, no other"
    assert _map_keys(text, "invoker") == triggers, "infra/functions.tf: name the invoker of every trigger class"


@pytest.mark.parametrize("path", _tf_files(), ids=lambda path: path.name)
def test_terraform_spells_no_function_topic_or_queue_name(path: Path) -> None:
    text = path.read_text()
    manifest_names = set(NAMES) | set(manifest.topics()) | QUEUE_NAMES
    literals = {match.group(1) for match in _QUOTED.finditer(_BLOCK_HEADER.sub("", text))}
    hardcoded = sorted(literals & manifest_names)
    assert not hardcoded, f"{path.name} spells {hardcoded}: take names from functions.auto.json"
    lookalikes = sorted(
        literal for literal in literals if (shape := _SNAKE_CASE.fullmatch(literal)) and shape.group(1) in AREAS
    )
    assert not lookalikes, f"{path.name} spells {lookalikes}, shaped like function names the manifest does not have"
    for resource in _NAMED_BY_MANIFEST:
        for body in _resource_bodies(text, resource):
            fixed = [f"{attribute} = {value!r}" for attribute, value in _NAME_ATTRIBUTE.findall(body)]
            assert not fixed, f"{path.name}: {resource} has a literal {fixed}; derive it from the manifest"


def test_manifest_names_are_deployable() -> None:
    for name in NAMES:
        # A Cloud Functions ID (at most 63 characters) that is also a Python identifier.
        assert re.fullmatch(r"[a-z][a-z0-9_]{0,61}[a-z0-9]", name), f"function name {name!r} cannot be deployed"
    for topic in manifest.topics():
        # Pub/Sub topic IDs, leaving room for the "-dead-letter" suffix infra/ adds.
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9._~+%-]{2,242}", topic), f"topic {topic!r} cannot be created"
        assert not topic.startswith("goog"), f"topic {topic!r}: the goog prefix is reserved"
    for queue in QUEUE_NAMES:
        assert re.fullmatch(r"[A-Za-z0-9-]{1,100}", queue), f"queue name {queue!r} cannot be created"


# -- (f) terraform fmt ---------------------------------------------------------------------------------------------


def test_terraform_is_formatted() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("the terraform binary is not installed, so `terraform fmt -check` cannot run")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-list=true", str(INFRA)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        # No ~/.terraformrc is expected; pointing at an empty one keeps the output to the files that need fixing.
        env={"TF_CLI_CONFIG_FILE": "/dev/null", "PATH": str(Path(terraform).parent), "CHECKPOINT_DISABLE": "1"},
    )
    assert result.returncode == 0, f"run `make infra` (terraform fmt): {result.stdout or result.stderr}"
