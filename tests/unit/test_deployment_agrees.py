"""functions/manifest.py is the single source of truth: main.py, the gateway, the local Pub/Sub and Cloud Tasks
wiring and infra/ must all agree with it. No stack is needed; each check says how to repair what it finds.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
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
from shared.config import Settings

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
            endpoint = pubsub_wiring.push_endpoint(stack.relay_url, spec.name, PROJECT, spec.topic)
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


# -- (g) who may call each function, by value -------------------------------------------------------------------
#
# The checkers take the Terraform text and the deployment (functions.auto.json) as arguments, so the tests below can
# also prove that they fail on a broken copy: a check that cannot fail checks nothing.

# Per trigger class: the ingress and the one invoker it must have, exactly as infra/functions.tf spells them.
EXPECTED_ACCESS = {
    # App-facing and webhook functions authenticate every call themselves (Firebase ID token; Xendit's token).
    "http": ("ALLOW_ALL", '"allUsers"'),
    "webhook": ("ALLOW_ALL", '"allUsers"'),
    # The control center reaches admin functions through its own backend or the load balancer, never the internet.
    "admin": ("ALLOW_INTERNAL_AND_GCLB", "var.control_center_invoker"),
    # Cloud Tasks signs as the tasks invoker; Eventarc's push subscriptions as the eventarc account.
    "task": ("ALLOW_INTERNAL_ONLY", '"serviceAccount:${google_service_account.tasks_invoker.email}"'),
    "pubsub": ("ALLOW_INTERNAL_ONLY", '"serviceAccount:${google_service_account.eventarc.email}"'),
}
_PUBLIC_MEMBERS = re.compile(r"\ballUsers\b|\ballAuthenticatedUsers\b")
# IAM resources that could let someone call a function (Cloud Run services, 2nd-gen functions, the project).
_INVOKER_RESOURCES = re.compile(
    r'^resource\s+"(google_cloud_run(?:_v2)?_service_iam_(?:member|binding|policy)|google_cloudfunctions2?_function_iam_'
    r'(?:member|binding|policy)|google_project_iam_(?:member|binding|policy))"\s+"([^"]+)"\s*\{',
    re.M,
)
# Where each trigger's wrapper lives in functions/: the code's own idea of who calls the function.
_WRAPPER_KIND = {"_tasks.py": "task", "_events.py": "pubsub", "_webhook.py": "webhook", "_http.py": "http"}


def _attributes(body: str) -> dict[str, str]:
    """`key = value` lines at the top level of a block body (values as written, nested blocks skipped)."""
    found, depth = {}, 0
    for line in body.splitlines():
        code = line.split("#", 1)[0].strip()
        if depth == 0 and (match := re.match(r"(\w+)\s*=\s*(.+)$", code)) and not match[2].endswith("{"):
            found[match[1]] = match[2].strip()
        depth += code.count("{") - code.count("}")
    return found


def _map_of_blocks(text: str, local_name: str) -> dict[str, dict[str, str]]:
    """`local_name = { key = { attr = value ... } ... }` as {key: {attr: value}}."""
    (body,) = _braced(text, re.compile(rf"^\s*{local_name}\s*=\s*\{{", re.M))
    return {
        key: _attributes(block)
        for key in _map_keys(text, local_name)
        for block in _braced(body, re.compile(rf"^\s*{key}\s*=\s*\{{", re.M))
    }


def _map_values(text: str, local_name: str) -> dict[str, str]:
    (body,) = _braced(text, re.compile(rf"^\s*{local_name}\s*=\s*\{{", re.M))
    return _attributes(body)


def code_trigger(name: str) -> str:
    """The trigger class the function's own wrapper implies (an http endpoint only admins may call is admin)."""
    from functions._http import ENDPOINTS
    from shared.domain.roles import Role

    function: Any = getattr(main, name)
    while function is not None:
        kind = _WRAPPER_KIND.get(Path(function.__code__.co_filename).name)
        if kind == "http":
            roles = ENDPOINTS[name].roles
            return "admin" if roles == frozenset({Role.ADMIN}) else "http"
        if kind:
            return kind
        function = getattr(function, "__wrapped__", None)
    raise AssertionError(f"main.{name} is wrapped by none of functions/{', '.join(_WRAPPER_KIND)}")


def access_problems(tf_files: dict[str, str], deployment: dict[str, Any]) -> list[str]:
    """Every way the Terraform lets a function be called by someone other than its class's callers."""
    return [
        *_class_access_problems(tf_files["functions.tf"]),
        *(problem for file, text in tf_files.items() for problem in _binding_problems(file, text)),
        *_deployed_trigger_problems(deployment),
    ]


def _class_access_problems(functions_tf: str) -> list[str]:
    problems: list[str] = []
    classes = _map_of_blocks(functions_tf, "trigger_class")
    invokers = _map_values(functions_tf, "invoker")
    for trigger, (ingress, invoker) in EXPECTED_ACCESS.items():
        if (actual := classes.get(trigger, {}).get("ingress")) != f'"{ingress}"':
            problems.append(f"{trigger} functions must have ingress {ingress}, not {actual}")
        if invokers.get(trigger) != invoker:
            problems.append(f"{trigger} functions must be invoked by {invoker} alone, not {invokers.get(trigger)}")
    (function,) = _resource_bodies(functions_tf, "google_cloudfunctions2_function")
    if "ingress_settings                 = local.trigger_class[each.value.trigger].ingress" not in function:
        problems.append("google_cloudfunctions2_function must take ingress_settings from its trigger class")
    if "service_account_email = google_service_account.eventarc.email" not in function:
        problems.append("Eventarc must deliver as the eventarc account, the pubsub functions' one invoker")
    if "HALO_TASKS_SERVICE_ACCOUNT = google_service_account.tasks_invoker.email" not in functions_tf:
        problems.append("tasks must be signed as the tasks invoker, the task functions' one invoker")
    return problems


# The control center's own server (docs/control-center.md) is public like the app-facing functions: it is no
# function, and every admin function behind it checks the admin's Firebase ID token itself. Nothing else may be.
_PUBLIC_ENTRANCES = {("control_center.tf", "google_cloud_run_v2_service_iam_member", "control_center_public")}


def _binding_problems(file: str, text: str) -> list[str]:
    """IAM bindings besides the invoker binding that let anyone invoke a function, and public members anywhere."""
    problems: list[str] = []
    for match in _INVOKER_RESOURCES.finditer(text):
        resource, label = match.groups()
        if (file, resource, label) in _PUBLIC_ENTRANCES:
            continue
        (body,) = _braced(text[match.start() :], re.compile(re.escape(match[0])))
        attributes = _attributes(body)
        if resource.startswith("google_project_iam"):
            if re.search(r"run\.invoker|cloudfunctions\.invoker|run\.admin|cloudfunctions\.admin", body):
                problems.append(f"{file}: {resource}.{label} grants invocation on the whole project")
        elif (resource, label) != ("google_cloud_run_service_iam_member", "invoker"):
            problems.append(f"{file}: {resource}.{label} grants invocation besides the invoker binding")
        elif (attributes.get("for_each"), attributes.get("role"), attributes.get("member")) != (
            "local.functions",
            '"roles/run.invoker"',
            "local.invoker[each.value.trigger]",
        ):
            problems.append(f"{file}: the invoker binding must give each function its class's invoker alone")
    allowed = {f'{trigger} = "allUsers"' for trigger in ("http", "webhook")} if file == "functions.tf" else set()
    if any(entrance[0] == file for entrance in _PUBLIC_ENTRANCES):
        allowed.add('member = "allUsers"')
    for line in text.splitlines():
        code = re.sub(r"\s+", " ", line.split("#", 1)[0].strip())
        if _PUBLIC_MEMBERS.search(code) and code not in allowed:
            problems.append(f"{file}: {code!r} makes something public")
    return problems


def _deployed_trigger_problems(deployment: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for name, spec in deployment["functions"].items():
        if spec["trigger"] == "task" and not spec.get("queue"):
            problems.append(f"{name}: a task function needs its queue")
        if spec["trigger"] == "pubsub" and not spec.get("topic"):
            problems.append(f"{name}: a pubsub function needs its topic")
        if name in manifest.BY_NAME and (expected := code_trigger(name)) != spec["trigger"]:
            problems.append(f"{name} is deployed as {spec['trigger']} but its code is a {expected} function")
    return problems


def _terraform_text() -> dict[str, str]:
    return {path.name: path.read_text() for path in _tf_files()}


def _deployment() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(generate.OUTPUT.read_text())
    return loaded


def test_every_function_is_callable_exactly_by_its_class_callers() -> None:
    problems = access_problems(_terraform_text(), _deployment())
    assert not problems, "\n".join(problems)


def test_the_control_center_invoker_can_never_be_public() -> None:
    (body,) = _braced((INFRA / "variables.tf").read_text(), re.compile(r'^variable "control_center_invoker" \{', re.M))
    pattern = re.search(r'can\(regex\("([^"]+)", var\.control_center_invoker\)\)', body)
    assert pattern, "control_center_invoker must be validated as an IAM member"
    for public in ("allUsers", "allAuthenticatedUsers"):
        assert not re.search(pattern[1], public), f"control_center_invoker must refuse {public}"
    assert re.search(pattern[1], "serviceAccount:control-center@p.iam.gserviceaccount.com")


@pytest.mark.parametrize(
    ("file", "before", "after"),
    [
        pytest.param(
            "functions.tf",
            '    task    = "serviceAccount:${google_service_account.tasks_invoker.email}"',
            '    task    = "allUsers"',
            id="task-invoker-allUsers",
        ),
        pytest.param(
            "functions.tf",
            'ingress         = "ALLOW_INTERNAL_ONLY"',
            'ingress         = "ALLOW_ALL"',
            id="task-ingress-all",
        ),
        pytest.param(
            "functions.tf",
            "    admin   = var.control_center_invoker",
            '    admin   = "allAuthenticatedUsers"',
            id="admin-invoker-public",
        ),
        pytest.param(
            "functions.tf",
            '    pubsub  = "serviceAccount:${google_service_account.eventarc.email}"',
            '    pubsub  = "serviceAccount:${google_service_account.functions.email}"',
            id="pubsub-invoker-other-account",
        ),
        pytest.param(
            "iam.tf",
            "# What the functions run as.",
            'resource "google_cloud_run_service_iam_member" "open_timers" {\n  for_each = local.functions\n'
            '  role     = "roles/run.invoker"\n  member   = "allUsers"\n}\n',
            id="extra-public-binding",
        ),
        pytest.param(
            "iam.tf",
            "# What the functions run as.",
            'resource "google_project_iam_member" "everyone_invokes" {\n  role   = "roles/run.invoker"\n'
            '  member = "serviceAccount:${google_service_account.functions.email}"\n}\n',
            id="project-wide-invoker",
        ),
        pytest.param(
            "control_center.tf",
            'output "control_center_url" {',
            'resource "google_cloud_run_v2_service_iam_member" "open_backdoor" {\n  role   = "roles/run.invoker"\n'
            '  member = "allUsers"\n}\n\noutput "control_center_url" {',
            id="second-public-entrance",
        ),
    ],
)
def test_the_access_check_fails_when_terraform_opens_a_function(file: str, before: str, after: str) -> None:
    broken = _terraform_text()
    assert before in broken[file], f"the mutation no longer applies to {file}: update this test"
    broken[file] = broken[file].replace(before, after, 1)
    assert access_problems(broken, _deployment()), f"the check missed: {after!r}"


def test_the_access_check_fails_when_a_task_handler_is_deployed_as_an_app_function() -> None:
    task = next(spec.name for spec in manifest.FUNCTIONS if spec.trigger == "task")
    deployment = _deployment()
    deployment["functions"][task] = dict(deployment["functions"][task], trigger="http", queue=None)
    problems = access_problems(_terraform_text(), deployment)
    assert any(task in problem and "task function" in problem for problem in problems), problems


# -- (h) the PostgreSQL connection budget ------------------------------------------------------------------------


def _variable_default(variables_tf: str, name: str) -> str | None:
    bodies = _braced(variables_tf, re.compile(rf'^variable "{name}" \{{', re.M))
    return _attributes(bodies[0]).get("default") if bodies else None


def _tfvars(text: str) -> dict[str, str]:
    return {match[1]: match[2].strip() for match in re.finditer(r"^\s*(\w+)\s*=\s*(.+?)\s*(?:#.*)?$", text, re.M)}


def connection_budget(tf_files: dict[str, str], deployment: dict[str, Any], tfvars: str = "") -> tuple[int, int, str]:
    """(connections the functions may hold at their max instances, connections they may use, the arithmetic)."""
    classes = _map_of_blocks(tf_files["functions.tf"], "trigger_class")
    overrides = _tfvars(tfvars)

    def number(variable: str) -> int:
        value = overrides.get(variable) or _variable_default(tf_files["variables.tf"], variable)
        assert value is not None and value.isdigit(), f"variable {variable} has no numeric default"
        return int(value)

    per_class: dict[str, int] = {}
    for spec in deployment["functions"].values():
        per_class[spec["trigger"]] = per_class.get(spec["trigger"], 0) + 1
    needed, lines = 0, []
    for trigger, count in sorted(per_class.items()):
        size = classes[trigger]
        instances, pool = int(size["max_instances"]), int(size["db_pool_size"])
        # The pool caps an instance at `pool` connections, idle and in use, whatever its concurrency
        # (shared/adapters/postgres/database.py; requests beyond them wait, then 503).
        needed += count * instances * pool
        lines.append(f"{trigger}: {count} functions x {instances} instances x {pool} = {count * instances * pool}")
    available = number("db_max_connections") - number("db_reserved_connections")
    return needed, available, "; ".join(lines)


def _environment_files() -> list[Path]:
    return sorted((INFRA / "environments").glob("*.tfvars"))


@pytest.mark.parametrize("tfvars", [None, *_environment_files()], ids=lambda path: path.name if path else "defaults")
def test_the_functions_fit_the_database_connection_budget(tfvars: Path | None) -> None:
    needed, available, arithmetic = connection_budget(
        _terraform_text(), _deployment(), tfvars.read_text() if tfvars else ""
    )
    assert needed <= available, (
        f"the functions may hold {needed} PostgreSQL connections but max_connections less the reserve is {available} "
        f"({arithmetic}): lower max_instances / concurrency / db_pool_size in infra/functions.tf or raise "
        "db_max_connections (and db_tier)"
    )


def test_the_pool_size_reaches_the_functions_and_terraform_refuses_a_plan_over_budget() -> None:
    text = _terraform_text()
    classes = _map_of_blocks(text["functions.tf"], "trigger_class")
    assert all("db_pool_size" in size for size in classes.values()), "every trigger class names its pool size"
    assert "HALO_DB_POOL_SIZE = tostring(local.trigger_class[each.value.trigger].db_pool_size)" in text["functions.tf"]
    assert "db_pool_size" in Settings.model_fields, "shared/config.py reads HALO_DB_POOL_SIZE"
    # Terraform's own sum is the one this file checks: max instances x pool size, per function.
    assert (
        "local.trigger_class[spec.trigger].max_instances * local.trigger_class[spec.trigger].db_pool_size"
        in text["functions.tf"]
    )
    assert "local.db_connections_needed <= var.db_max_connections - var.db_reserved_connections" in text["database.tf"]
    assert "value = tostring(var.db_max_connections)" in text["database.tf"]


@pytest.mark.parametrize(
    ("file", "before", "after"),
    [
        pytest.param("functions.tf", "max_instances   = 6", "max_instances   = 10", id="more-app-instances"),
        pytest.param("functions.tf", "db_pool_size    = 3", "db_pool_size    = 8", id="bigger-app-pool"),
        pytest.param("variables.tf", "default     = 1000", "default     = 400", id="fewer-connections"),
    ],
)
def test_the_budget_check_fails_when_terraform_breaks_it(file: str, before: str, after: str) -> None:
    broken = _terraform_text()
    assert before in broken[file], f"the mutation no longer applies to {file}: update this test"
    broken[file] = broken[file].replace(before, after, 1)
    needed, available, _ = connection_budget(broken, _deployment())
    assert needed > available


def test_concurrency_costs_no_connections_since_the_pool_caps_them() -> None:
    """What the pool's cap bought: an app instance may serve many more requests at once than it holds connections,
    and the budget does not move with its concurrency."""
    text = _terraform_text()
    http = _map_of_blocks(text["functions.tf"], "trigger_class")["http"]
    assert int(http["concurrency"]) > int(http["db_pool_size"])
    more = dict(text)
    more["functions.tf"] = text["functions.tf"].replace("concurrency     = 40", "concurrency     = 80", 1)
    assert more["functions.tf"] != text["functions.tf"], "the mutation no longer applies: update this test"
    assert connection_budget(more, _deployment())[0] == connection_budget(text, _deployment())[0]


def test_queues_dispatch_no_more_at_once_than_their_handlers_can_take() -> None:
    text = _terraform_text()
    size = _map_of_blocks(text["functions.tf"], "trigger_class")["task"]
    capacity = int(size["max_instances"]) * int(size["concurrency"])
    default = int(_variable_default(text["variables.tf"], "queue_max_concurrent_dispatches") or 0)
    for name, queue in _deployment()["queues"].items():
        in_flight = queue.get("max_concurrent_dispatches") or default
        assert in_flight <= capacity, f"queue {name} dispatches {in_flight} at once to handlers that take {capacity}"


# -- (i) monitoring reads what the code logs --------------------------------------------------------------------

_SOURCES = [path for folder in ("shared", "functions") for path in sorted((ROOT / folder).rglob("*.py"))]
_QUERY_MESSAGE = re.compile(r'jsonPayload\.message\s*=\s*(\("[^)]*"\)|"[^"]*")')
_QUERY_FIELD = re.compile(r"jsonPayload\.(\w+)")


def logged_events(sources: list[Path] = _SOURCES) -> dict[str, list[set[str]]]:
    """Each message the code logs through shared/logging.py's `event(log, "<message>", ..., field=...)` (under any
    alias), or as `log.<level>("<message>", extra={"fields": {...}})`, with the fields of each such call."""
    found: dict[str, list[set[str]]] = {}
    for path in sources:
        tree = ast.parse(path.read_text(), str(path))
        aliases = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "shared.logging"
            for alias in node.names
            if alias.name == "event"
        }
        for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call)):
            message: ast.expr | None = None
            fields: set[str] = set()
            if isinstance(call.func, ast.Name) and call.func.id in aliases and len(call.args) >= 2:
                message, fields = call.args[1], {keyword.arg for keyword in call.keywords if keyword.arg}
            elif isinstance(call.func, ast.Attribute) and call.args:
                extra = next((keyword.value for keyword in call.keywords if keyword.arg == "extra"), None)
                if isinstance(extra, ast.Dict):
                    for key, value in zip(extra.keys, extra.values, strict=True):
                        if isinstance(key, ast.Constant) and key.value == "fields" and isinstance(value, ast.Dict):
                            message = call.args[0]
                            fields = {k.value for k in value.keys if isinstance(k, ast.Constant)}
            if isinstance(message, ast.Constant) and isinstance(message.value, str):
                found.setdefault(message.value, []).append(fields)
    return found


def _log_queries(body: str) -> tuple[list[str], set[str]]:
    """The messages and the jsonPayload fields a block's log filters and extractors name (quotes unescaped)."""
    text = body.replace('\\"', '"')
    messages = [value for match in _QUERY_MESSAGE.finditer(text) for value in re.findall(r'"([^"]*)"', match[1])]
    fields = {field for field in _QUERY_FIELD.findall(text) if field != "message"}
    return messages, fields


def monitoring_problems(monitoring_tf: str, logged: dict[str, list[set[str]]]) -> list[str]:
    """Every log-based metric and log-matching alert must name a message the code logs, and only fields that one of
    that message's calls logs; every metric an alert or the dashboard reads must be defined here."""
    problems: list[str] = []
    metrics = set(re.findall(r'^resource "google_logging_metric" "(\w+)"', monitoring_tf, re.M))
    blocks = [("google_logging_metric", body) for body in _resource_bodies(monitoring_tf, "google_logging_metric")]
    for policy in _resource_bodies(monitoring_tf, "google_monitoring_alert_policy"):
        blocks.extend(
            ("condition_matched_log", body) for body in _braced(policy, re.compile(r"condition_matched_log\s*\{"))
        )
    for kind, body in blocks:
        name = re.search(r'name\s*=\s*"([^"]+)"', body)
        label = name[1] if name else kind
        if re.search(r"filter\s*=\s*google_logging_metric\.(\w+)\.filter", body):
            continue  # the metric's own filter, checked with the metric
        messages, fields = _log_queries(body)
        if not messages:
            problems.append(f"{label}: its log filter names no jsonPayload.message")
        for message in messages:
            calls = logged.get(message)
            if not calls:
                problems.append(f"{label}: no code logs the message {message!r}")
            elif not any(fields <= call for call in calls):
                known = sorted(set().union(*calls))
                problems.append(f"{label}: {message!r} is logged with {known}, not with all of {sorted(fields)}")
    for reference in re.findall(r"google_logging_metric\.(\w+)\.", monitoring_tf):
        if reference not in metrics:
            problems.append(f"an alert or chart reads google_logging_metric.{reference}, which is not defined")
    return problems


def test_every_log_filter_names_what_the_code_logs() -> None:
    problems = monitoring_problems((INFRA / "monitoring.tf").read_text(), logged_events())
    assert not problems, "\n".join(problems)


def test_the_log_reader_finds_the_events_the_alerts_rely_on() -> None:
    logged = logged_events()
    assert {"task", "code", "function"} <= set().union(*logged["task will retry"])
    assert {"alert", "category", "admins"} <= set().union(*logged["safety signal raised"])
    assert {"alert", "category", "admins_pushed"} <= set().union(*logged["crisis signal escalated"])
    assert {"outcome", "reason"} <= set().union(*logged["xendit callback"])
    assert {"oldest_unpublished_s", "pending", "unacknowledged_alerts"} <= set().union(*logged["outbox sweep"])
    assert "unhandled error" in logged, "log.error(..., extra={'fields': ...}) lines are read too"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param('\\"task will retry\\"', '\\"task retried\\"', id="renamed-message"),
        pytest.param("EXTRACT(jsonPayload.oldest_unpublished_s)", "EXTRACT(jsonPayload.oldest_s)", id="unlogged-field"),
        pytest.param("EXTRACT(jsonPayload.admins_pushed)", "EXTRACT(jsonPayload.pushed)", id="unlogged-policy-field"),
        pytest.param(
            'filter = "${local.function_logs} AND jsonPayload.message=\\"outbox sweep\\""',
            'filter = "${local.function_logs}"',
            id="no-message",
        ),
    ],
)
def test_the_monitoring_check_fails_when_a_filter_names_what_nobody_logs(before: str, after: str) -> None:
    text = (INFRA / "monitoring.tf").read_text()
    assert before in text, "the mutation no longer applies to monitoring.tf: update this test"
    assert monitoring_problems(text.replace(before, after, 1), logged_events())


def test_quarantine_alerts_match_the_outcome_the_code_logs() -> None:
    from shared.domain.billing import Outcome

    text = (INFRA / "monitoring.tf").read_text()
    assert 'jsonPayload.outcome=\\"quarantined\\"' in text
    assert Outcome("quarantined") is Outcome.QUARANTINED


def test_every_alert_pages_the_notification_channels_and_the_dashboard_shows_every_metric() -> None:
    text = (INFRA / "monitoring.tf").read_text()
    policies = _resource_bodies(text, "google_monitoring_alert_policy")
    assert len(policies) >= 8
    for body in policies:
        assert re.search(r"notification_channels\s*=\s*local\.(all|crisis)_channels", body), body[:200]
        assert "documentation {" in body and "local.runbook" in body, "every policy says where its runbook is"
    assert "all_channels    = var.notification_channels" in text
    assert "concat(var.notification_channels, var.crisis_notification_channels)" in text
    (dashboard,) = _braced(text, re.compile(r"^\s*dashboard_charts\s*=\s*\[", re.M))
    for metric in re.findall(r'^resource "google_logging_metric" "(\w+)"', text, re.M):
        assert f"google_logging_metric.{metric}.name" in dashboard, f"the dashboard does not chart {metric}"


# -- (j) warm instances: only the functions the manifest marks warm keep one -------------------------------------

_CLASS_MIN = "local.trigger_class[each.value.trigger].min_instances"


def warm_instances(tf_files: dict[str, str], deployment: dict[str, Any], tfvars: str = "") -> dict[str, int]:
    """Each deployed function's min_instance_count as infra/functions.tf computes it: the attribute is read from the
    function resource and evaluated for the two forms it may take (the class's min_instances for every function, or
    only for functions whose manifest entry is warm)."""
    (body,) = _resource_bodies(tf_files["functions.tf"], "google_cloudfunctions2_function")
    (config,) = _braced(body, re.compile(r"^\s*service_config\s*\{", re.M))
    expression = _attributes(config)["min_instance_count"]
    classes = _map_of_blocks(tf_files["functions.tf"], "trigger_class")
    overrides = _tfvars(tfvars)

    def class_min(trigger: str) -> int:
        value = classes[trigger]["min_instances"]
        if value.startswith("var."):
            value = overrides.get(value[4:]) or _variable_default(tf_files["variables.tf"], value[4:]) or ""
        assert value.isdigit(), f"min_instances of {trigger} is not a number: {value}"
        return int(value)

    found: dict[str, int] = {}
    for name, spec in deployment["functions"].items():
        if expression == _CLASS_MIN:
            found[name] = class_min(spec["trigger"])
        elif expression == f"each.value.warm ? {_CLASS_MIN} : 0":
            found[name] = class_min(spec["trigger"]) if spec["warm"] else 0
        else:
            raise AssertionError(f"min_instance_count = {expression}: teach warm_instances this form")
    return found


@pytest.mark.parametrize("tfvars", [None, *_environment_files()], ids=lambda path: path.name if path else "defaults")
def test_only_the_functions_the_manifest_marks_warm_keep_a_warm_instance(tfvars: Path | None) -> None:
    instances = warm_instances(_terraform_text(), _deployment(), tfvars.read_text() if tfvars else "")
    warm = {spec.name for spec in manifest.FUNCTIONS if spec.warm}
    assert {name for name, count in instances.items() if count} <= warm, "a function the manifest leaves cold is warm"
    if tfvars is None:  # the defaults (production): every function marked warm keeps one
        assert {name for name, count in instances.items() if count} == warm


def test_only_app_facing_functions_are_marked_warm() -> None:
    """Only the http class has warm instances to give; a warm mark elsewhere would promise what infra never does."""
    assert {spec.trigger for spec in manifest.FUNCTIONS if spec.warm} == {"http"}
    app_facing = sum(spec.trigger == "http" for spec in manifest.FUNCTIONS)
    assert 0 < sum(spec.warm for spec in manifest.FUNCTIONS) < app_facing


def test_the_warm_check_fails_when_terraform_warms_every_app_function() -> None:
    broken = _terraform_text()
    before = f"each.value.warm ? {_CLASS_MIN} : 0"
    assert before in broken["functions.tf"], "the mutation no longer applies to functions.tf: update this test"
    broken["functions.tf"] = broken["functions.tf"].replace(before, _CLASS_MIN, 1)
    instances = warm_instances(broken, _deployment())
    assert {name for name, count in instances.items() if count} != {s.name for s in manifest.FUNCTIONS if s.warm}
