"""Topics and push subscriptions on the Pub/Sub emulator, over its REST surface.

Each push endpoint carries the topic in its path (`/<function>/projects/P/topics/T`), so functions-framework
builds the CloudEvent with the right source, as Eventarc does in production.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

from functions.manifest import FUNCTIONS


def _call(method: str, url: str, body: dict[str, object] | None = None) -> dict[str, object]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.loads(response.read() or b"{}"))
    except urllib.error.HTTPError as err:
        if err.code == 409:  # already exists: wiring is idempotent
            return {}
        raise RuntimeError(f"{method} {url}: {err.code} {err.read()[:300]!r}") from err


def push_endpoint(functions_url: str, function: str, project: str, topic: str) -> str:
    return f"{functions_url}/{function}/projects/{project}/topics/{topic}"


def wire_push_subscriptions(project: str, host: str, push_url: str) -> list[str]:
    """Topics and push subscriptions, pushing to `push_url` (the stack's relay, which signs and forwards each push
    to the same path on the gateway)."""
    base = f"http://{host}/v1/projects/{project}"
    wired = []
    for spec in FUNCTIONS:
        if spec.trigger != "pubsub" or spec.topic is None:
            continue
        _call("PUT", f"{base}/topics/{spec.topic}", {})
        _call(
            "PUT",
            f"{base}/subscriptions/{spec.topic}--{spec.name}",
            {
                "topic": f"projects/{project}/topics/{spec.topic}",
                "ackDeadlineSeconds": 60,
                "pushConfig": {"pushEndpoint": push_endpoint(push_url, spec.name, project, spec.topic)},
            },
        )
        wired.append(f"{spec.topic}→{spec.name}")
    return wired


def publish_tick(project: str, host: str, topic: str) -> None:
    try:
        _call(
            "POST",
            f"http://{host}/v1/projects/{project}/topics/{topic}:publish",
            {"messages": [{"data": base64.b64encode(b"{}").decode()}]},
        )
    except (OSError, RuntimeError):
        pass  # a missed tick is made up by the next one


def hold_pushes(project: str, host: str, function: str) -> None:
    """Stop pushing a function's subscription: messages wait in the emulator until `drop_backlog`. The benchmarks
    use this to keep background consumers, which run on other instances in production, off the cores of the
    instance under test."""
    spec = next(spec for spec in FUNCTIONS if spec.name == function)
    _call(
        "POST",
        f"http://{host}/v1/projects/{project}/subscriptions/{spec.topic}--{spec.name}:modifyPushConfig",
        {"pushConfig": {}},
    )


def detach(project: str, host: str, function: str) -> None:
    """Delete a function's subscription: what is published meanwhile is never kept for it, so no push can reach the
    function until `wire_push_subscriptions` creates the subscription again. Unlike `hold_pushes`, whose new push
    config the emulator may apply only after a message published just after it has already been pushed."""
    spec = next(spec for spec in FUNCTIONS if spec.name == function)
    _call("DELETE", f"http://{host}/v1/projects/{project}/subscriptions/{spec.topic}--{spec.name}")


def drop_backlog(project: str, host: str, push_url: str, function: str) -> None:
    """Delete a function's subscription and create it afresh, pushing again (to `push_url`, the stack's relay):
    what waited in it is gone."""
    detach(project, host, function)
    wire_push_subscriptions(project, host, push_url)
