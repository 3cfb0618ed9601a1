"""A local Cloud Tasks API (google.cloud.tasks.v2) for the local stack and the integration tests.

Google ships no Cloud Tasks emulator, and the one on PyPI pins protobuf<5 and lacks GetTask, DeleteTask,
de-duplication, backoff and OIDC. This one serves the real gRPC service on the request and response types of
`google-cloud-tasks`, so the production `CloudTasksClient` is what talks to it, and pushes `http_request` tasks to
their URLs with Cloud Tasks' headers, retry schedule and tombstones.

Deliberate differences from the real service (see the module docstrings for details):
- OIDC tokens are signed with the key given by `--oidc-key` (the local stack's own, whose certificate the functions
  verify against), not Google's; without one they are unsigned (`alg: none`) and no handler accepts them.
- `dispatch_deadline` below Cloud Tasks' 15 s minimum is accepted, so timeouts can be tested quickly.
- Backoffs and retry durations are not truncated to whole seconds, so retries can be tested quickly.
- Deleting a queue forgets its task tombstones and a queue name can be re-created at once (Cloud Tasks
  blocks the name for 7 days), so tests can reset a queue.
- Rate limits, queue-level `http_target` overrides, App Engine and OAuth targets, ListQueues' filter,
  redirects and 429/503 system throttling are not emulated.
"""
