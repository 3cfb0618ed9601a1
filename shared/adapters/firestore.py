"""Firestore through google-cloud-firestore; the emulator is used when FIRESTORE_EMULATOR_HOST is set.

Two ways to send the same writes, chosen by `public_client_api` (HALO_PUBLIC_CLIENT_API):
- the fast path (default) builds Firestore's plain protobuf messages itself and calls Commit on the client's own
  gRPC channel. It reads three private attributes of `google.cloud.firestore.Client` (`_firestore_api`,
  `_database_string`, `_rpc_metadata`); `private_api_problems()` says whether the installed library still has them,
  and tests/unit/test_client_library_canary.py fails, naming the attribute, on an upgrade that changes them;
- the public path uses the library's own `client.batch()`, `set(merge=...)` and `delete`, with the same group
  commit, the same deadline, and the same errors (Unavailable when Firestore cannot be reached in time).
"""

from __future__ import annotations

import inspect
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.adapters.group_commit import GroupCommit
from shared.domain.events import DocumentDelete, DocumentEvent
from shared.errors import Unavailable

# Firestore's own limit on writes per batch.
BATCH_LIMIT = 500
# Writes of up to this many documents (a message, a session update) may share a commit with other requests'.
GROUP_MAX_OPS = 10
# An outage must not hold a request for the client library's default minute of retrying: a batch that has not
# landed by then fails, and the outbox rows it came from are retried later by the projector.
_COMMIT_DEADLINE_S = 5.0
# Backoff between resends of a commit Firestore answered busy or unavailable (the client library's for writes).
_RETRY_INITIAL_S = 0.1
_RETRY_MAXIMUM_S = 1.0


class FirestoreWriter:
    """Writes document events in batches. Small writes from concurrent requests share commits (group commit): one
    commit is in flight at a time, and the writes that arrive meanwhile go together in the next. Alone, a write is
    committed at once; under load, the instance sends one commit for many requests instead of one each."""

    def __init__(self, project_id: str, *, public_api: bool | None = None) -> None:
        self._project_id = project_id
        # The library's public API instead of the fast path (None: as the settings say).
        self.public_api = _public_api_setting() if public_api is None else public_api
        self._client: Any = None
        self._rpc: Any = None
        self._protos: Any = None
        self._database = ""
        self._metadata: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._group: GroupCommit[_Unit] = GroupCommit(self._commit_group, take=_next_group)

    @property
    def client(self) -> Any:
        """The client library's Firestore client (its channel carries the writes)."""
        with self._lock:
            if self._client is None:
                from google.cloud import firestore

                self._client = firestore.Client(project=self._project_id)
            return self._client

    def apply(self, events: Sequence[DocumentEvent]) -> None:
        """Raises Unavailable when Firestore cannot be reached in time (the caller may retry). Either every write
        landed or, for up to GROUP_MAX_OPS documents, none of them did. Data Firestore cannot store is refused
        (TypeError, ValueError) before anything is sent, failing this caller alone."""
        ops = [_Op(path, event) for event in events for path in event.paths]
        if len(ops) > GROUP_MAX_OPS:  # a blast or a projector's batch: its own commits, in BATCH_LIMIT slices
            for start in range(0, len(ops), BATCH_LIMIT):
                self._commit(ops[start : start + BATCH_LIMIT])
            return
        self._group.submit(_Unit(frozenset(op.path for op in ops), self._encode(ops)))

    def _commit_group(self, units: list[_Unit]) -> None:
        self._commit_writes([write for unit in units for write in unit.writes])

    def _commit(self, ops: list[_Op]) -> None:
        self._commit_writes(self._encode(ops))

    def _encode(self, ops: list[_Op]) -> list[Any]:
        """Write protobufs for `ops` (public path: the library's own writes), on the caller's thread (a group's
        commit only sends)."""
        if self.public_api:
            return self._encode_public(ops)
        self._commit_rpc()
        protos = self._protos
        writes: list[Any] = []
        encoded: dict[int, Any] = {}  # one event written to many paths (a blast's offers) is encoded once
        for op in ops:
            write = protos.write()
            if isinstance(op.event, DocumentDelete):
                write.delete = self._document_name(op.path)
            else:
                known = encoded.get(id(op.event))
                if known is None:
                    known = encoded[id(op.event)] = protos.encode_document(dict(op.event.data), merge=op.event.merge)
                document, mask = known
                write.update.CopyFrom(document)
                write.update.name = self._document_name(op.path)
                if mask is not None:
                    write.update_mask.field_paths.extend(mask)
            writes.append(write)
        return writes

    def _commit_writes(self, writes: list[Any]) -> None:
        if self.public_api:
            self._commit_public(writes)
            return
        rpc, metadata = self._commit_rpc()
        request = self._protos.commit_request(database=self._database)
        request.writes.extend(writes)
        self._send(rpc, request, metadata)

    def _send(self, rpc: Any, request: Any, metadata: list[tuple[str, str]]) -> None:
        """One Commit, resent after a short backoff while Firestore is busy or unreachable, until the deadline."""
        import grpc
        from google.api_core import exceptions

        deadline = time.monotonic() + _COMMIT_DEADLINE_S
        backoff = _RETRY_INITIAL_S
        while True:
            remaining = deadline - time.monotonic()
            try:
                rpc(request, timeout=max(remaining, 0.001), metadata=metadata)
                return
            except grpc.RpcError as exc:
                code = exc.code() if callable(getattr(exc, "code", None)) else None  # type: ignore[attr-defined]
                transient = code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
                remaining = deadline - time.monotonic()
                if transient and remaining > backoff:
                    time.sleep(backoff * random.uniform(0.5, 1.0))
                    backoff = min(backoff * 2, _RETRY_MAXIMUM_S)
                    continue
                if transient or code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise Unavailable("Firestore is unreachable; retry the request") from exc
                raise exceptions.from_grpc_error(exc) from exc  # type: ignore[no-untyped-call]

    def _commit_rpc(self) -> tuple[Any, list[tuple[str, str]]]:
        """Firestore's Commit as a gRPC callable on the client library's own channel (authenticated as that client
        is, the emulator's included), taking plain protobuf messages: building those costs a fraction of the
        library's wrapper types, and the call skips the generated client's retry and logging layers."""
        client = self.client
        with self._lock:
            if self._rpc is None:
                from google.api_core.gapic_v1 import routing_header

                protos = _Protos()
                channel = _private(_private(client, "_firestore_api").transport, "grpc_channel")
                self._rpc = channel.unary_unary(
                    COMMIT_METHOD,
                    request_serializer=protos.commit_request.SerializeToString,
                    response_deserializer=protos.commit_response.FromString,
                )
                self._protos = protos
                self._database = _private(client, "_database_string")
                # What the library sends with every call: the database as a resource prefix (and, against the
                # emulator, the owner's authorization), plus the routing header its generated client adds.
                self._metadata = [
                    *_private(client, "_rpc_metadata"),
                    routing_header.to_grpc_metadata((("database", self._database),)),  # type: ignore[no-untyped-call]
                ]
            return self._rpc, self._metadata

    def _document_name(self, path: str) -> str:
        return f"{self._database}/documents/{_document_path(path)}"

    # -- the public path ------------------------------------------------------------------------------------------

    def _encode_public(self, ops: list[_Op]) -> list[Any]:
        """The library's writes for `ops`. Set on a scratch batch, so data the library cannot encode is refused here,
        on the caller's thread, before it could join (and fail) a group."""
        client = self.client
        scratch = client.batch()
        writes: list[_PublicWrite] = []
        natives: dict[int, Any] = {}  # one event written to many paths is translated once
        for op in ops:
            reference = client.document(_document_path(op.path))
            if isinstance(op.event, DocumentDelete):
                write = _PublicWrite(reference, None, merge=False)
            else:
                native = natives.get(id(op.event))
                if native is None:
                    native = natives[id(op.event)] = native_document(dict(op.event.data), merge=op.event.merge)
                write = _PublicWrite(reference, native, merge=op.event.merge)
            write.add_to(scratch)
            writes.append(write)
        return writes

    def _commit_public(self, writes: list[Any]) -> None:
        """One batch of `writes`, resent after a short backoff while Firestore is busy or unreachable, until the
        deadline (the library's own retry is off: its default would hold a request for a minute)."""
        from google.api_core import exceptions

        client = self.client
        deadline = time.monotonic() + _COMMIT_DEADLINE_S
        backoff = _RETRY_INITIAL_S
        while True:
            batch = client.batch()
            for write in writes:
                write.add_to(batch)
            try:
                batch.commit(retry=None, timeout=max(deadline - time.monotonic(), 0.001))
                return
            except (exceptions.ServiceUnavailable, exceptions.ResourceExhausted) as exc:
                if deadline - time.monotonic() > backoff:
                    time.sleep(backoff * random.uniform(0.5, 1.0))
                    backoff = min(backoff * 2, _RETRY_MAXIMUM_S)
                    continue
                raise Unavailable("Firestore is unreachable; retry the request") from exc
            except exceptions.DeadlineExceeded as exc:
                raise Unavailable("Firestore is unreachable; retry the request") from exc


COMMIT_METHOD = "/google.firestore.v1.Firestore/Commit"
# What the fast path reads from google.cloud.firestore.Client that the library does not promise to keep.
PRIVATE_ATTRIBUTES = ("_firestore_api", "_database_string", "_rpc_metadata")


def _public_api_setting() -> bool:
    from shared.config import get_settings

    return get_settings().public_client_api


def _private(owner: Any, name: str) -> Any:
    """A private attribute the fast path needs; its absence names the attribute and the way out."""
    try:
        return getattr(owner, name)
    except AttributeError as exc:
        raise RuntimeError(
            f"google-cloud-firestore's {type(owner).__name__} no longer has {name}, which the Firestore fast path "
            "uses: set HALO_PUBLIC_CLIENT_API=true (the library's public API) and see docs/operations.md"
        ) from exc


def private_api_problems(project_id: str = "demo-halo") -> list[str]:
    """What the installed google-cloud-firestore no longer offers the fast path, each naming the attribute; empty
    when the fast path can run. Builds a client with anonymous credentials: nothing is sent."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    problems: list[str] = []
    client = firestore.Client(project=project_id, credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    database = f"projects/{project_id}/databases/(default)"
    try:
        channel = client._firestore_api.transport.grpc_channel
        if not callable(getattr(channel, "unary_unary", None)):
            problems.append("Client._firestore_api.transport.grpc_channel has no unary_unary (not a gRPC channel)")
    except AttributeError as exc:
        problems.append(f"Client._firestore_api.transport.grpc_channel is gone: {exc}")
    found = getattr(client, "_database_string", "missing")
    if found != database:
        problems.append(f"Client._database_string is not the database's resource name {database!r}: {found!r}")
    metadata = getattr(client, "_rpc_metadata", None)
    if not isinstance(metadata, list | tuple) or ("google-cloud-resource-prefix", database) not in list(metadata):
        problems.append(f"Client._rpc_metadata no longer holds the resource prefix header: {metadata!r}")
    problems.extend(_protocol_problems())
    client.close()  # type: ignore[no-untyped-call]
    return problems


def _protocol_problems() -> list[str]:
    """The protobuf messages and fields the fast path builds, and the Commit method it calls by name."""
    from google.api_core.gapic_v1 import routing_header
    from google.cloud.firestore_v1 import field_path

    problems: list[str] = []
    try:
        protos = _Protos()
    except (AttributeError, ImportError) as exc:
        return [f"google.cloud.firestore_v1.types no longer has the plain protobuf types: {exc}"]
    # The generated transport names the RPC the fast path calls by hand; a rename there is a rename on the wire.
    from google.cloud.firestore_v1.services.firestore.transports import grpc as generated

    commit = getattr(generated.FirestoreGrpcTransport, "commit", None)
    if not isinstance(commit, property) or COMMIT_METHOD not in inspect.getsource(commit.fget):  # type: ignore[arg-type]
        problems.append(f"the generated Firestore transport no longer calls {COMMIT_METHOD}")
    value_fields = (*_SCALAR_FIELDS.values(), "null_value", "map_value", "array_value", "timestamp_value")
    needed = {
        protos.commit_request: ("database", "writes"),
        protos.write: ("update", "delete", "update_mask"),
        protos.document: ("name", "fields"),
        type(protos.document().fields["x"]): value_fields,
    }
    for message, fields in needed.items():
        missing = [name for name in fields if name not in message.DESCRIPTOR.fields_by_name]
        if missing:
            problems.append(f"{message.DESCRIPTOR.full_name} has no field {', '.join(missing)}")
    for module, name in ((routing_header, "to_grpc_metadata"), (field_path, "render_field_path")):
        if not callable(getattr(module, name, None)):
            problems.append(f"{module.__name__}.{name} is gone")
    return problems


def _document_path(path: str) -> str:
    parts = path.split("/")
    if len(parts) % 2 or "" in parts:
        raise ValueError(f"not a document path: {path!r}")
    return path


@dataclass(frozen=True)
class _PublicWrite:
    """One write as the library's batch takes it: a set of `data` (library values) or, with None, a delete."""

    reference: Any
    data: dict[str, Any] | None
    merge: bool

    def add_to(self, batch: Any) -> None:
        if self.data is None:
            batch.delete(self.reference)
        else:
            batch.set(self.reference, self.data, merge=self.merge)


def native_document(data: dict[str, Any], *, merge: bool) -> dict[str, Any]:
    """An event's data as the library's `set` takes it: `{"$ts": iso}` a datetime, `{"$delete": true}` the library's
    DELETE_FIELD (only where a merge can delete: a field, not a list element). Refuses what the fast path refuses,
    with the same error types."""
    from google.cloud import firestore

    def native(value: Any, *, deletable: bool) -> Any:
        if isinstance(value, dict):
            if set(value) == {"$ts"}:
                return datetime.fromisoformat(value["$ts"])
            if set(value) == {"$delete"}:
                if not deletable:
                    raise ValueError("a field can only be deleted by a merge, not inside a list")
                return firestore.DELETE_FIELD
            for key in value:
                if not isinstance(key, str):
                    raise TypeError(f"a field name is a string, not {type(key).__name__}")
            return {key: native(item, deletable=deletable) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [native(item, deletable=False) for item in value]
        return value

    if not isinstance(data, dict):
        raise TypeError(f"a document is a mapping, not {type(data).__name__}")
    translated: dict[str, Any] = native(data, deletable=merge)
    return translated


@dataclass(frozen=True)
class _Op:
    """One document an event writes."""

    path: str
    event: DocumentEvent


@dataclass(frozen=True)
class _Unit:
    """One caller's writes, encoded, and the documents they touch."""

    paths: frozenset[str]
    writes: list[Any]


def _next_group(waiting: Sequence[_Unit]) -> int:
    """In arrival order; a write to a document already in the group waits for the next commit, so writes to one
    document land in the order they came."""
    paths: set[str] = set()
    for count, unit in enumerate(waiting[: BATCH_LIMIT // GROUP_MAX_OPS]):
        if unit.paths & paths:
            return count
        paths |= unit.paths
    return min(len(waiting), BATCH_LIMIT // GROUP_MAX_OPS)


class _Protos:
    """Firestore's plain protobuf types, and an event's data (JSON with `$ts` and `$delete` markers, see
    shared/domain/events.py) encoded into them as the client library's `set` would: a `merge` updates exactly the
    leaf fields it names (a nested map is merged field by field, an empty map is a value of its own, `$delete` removes
    a field)."""

    def __init__(self) -> None:
        from google.cloud.firestore_v1.types import document, firestore, write

        self.commit_request = firestore.CommitRequest.pb()
        self.write = write.Write.pb()
        self.commit_response = firestore.CommitResponse.pb()
        self.document = document.Document.pb()

    def encode_document(self, data: dict[str, Any], *, merge: bool) -> tuple[Any, list[str] | None]:
        document = self.document()
        mask: list[str] | None = [] if merge else None
        _encode_fields(document.fields, data, (), mask)
        return document, mask


def _encode_fields(fields: Any, data: dict[str, Any], prefix: tuple[str, ...], mask: list[str] | None) -> None:
    from google.cloud.firestore_v1.field_path import render_field_path

    if not isinstance(data, dict):
        raise TypeError(f"a document is a mapping, not {type(data).__name__}")
    for key, value in data.items():
        if not isinstance(key, str):
            raise TypeError(f"a field name is a string, not {type(key).__name__}")
        path = (*prefix, key)
        if isinstance(value, dict) and set(value) == {"$delete"}:
            if mask is None:
                raise ValueError("a field can only be deleted by a merge")
            mask.append(render_field_path(path))
        elif mask is not None and isinstance(value, dict) and value and set(value) != {"$ts"}:
            nested = fields[key].map_value.fields
            _encode_fields(nested, value, path, mask)
            if not nested:  # it only deleted fields: nothing of it is written
                del fields[key]
        else:
            _encode_value(fields[key], value)
            if mask is not None:
                mask.append(render_field_path(path))


# Python scalars and the Value field each is stored in (by exact type: a bool is not stored as an integer).
_SCALAR_FIELDS = {str: "string_value", int: "integer_value", bool: "boolean_value", float: "double_value",
                  bytes: "bytes_value"}  # fmt: skip


def _encode_value(target: Any, value: Any) -> None:
    """`value` into the Value message `target` (a map entry or list element already in place)."""
    field = _SCALAR_FIELDS.get(type(value))
    if field is not None:
        setattr(target, field, value)
    elif value is None:
        target.null_value = 0
    elif isinstance(value, dict):
        _encode_mapping(target, value)
    elif isinstance(value, (list, tuple)):
        values = target.array_value
        values.SetInParent()  # an empty list is a value too
        for item in value:
            _encode_value(values.values.add(), item)
    elif isinstance(value, datetime):
        target.timestamp_value.FromDatetime(value)
    else:
        _encode_subclassed(target, value)


def _encode_subclassed(target: Any, value: Any) -> None:
    """A scalar of a derived type (a StrEnum, an IntEnum) is stored as its base type's value."""
    for kind in (bool, int, float, str, bytes):  # bool before int: a bool is an int
        if isinstance(value, kind):
            setattr(target, _SCALAR_FIELDS[kind], value)  # protobuf stores the base type's value
            return
    raise TypeError(f"Firestore cannot store a {type(value).__name__}")


def _encode_mapping(target: Any, value: dict[str, Any]) -> None:
    if set(value) == {"$ts"}:
        target.timestamp_value.FromDatetime(datetime.fromisoformat(value["$ts"]))
        return
    if set(value) == {"$delete"}:
        raise ValueError("a field can only be deleted at the top of a merge's data, not inside a value")
    entries = target.map_value
    entries.SetInParent()  # an empty map is a value too
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f"a field name is a string, not {type(key).__name__}")
        _encode_value(entries.fields[key], item)
