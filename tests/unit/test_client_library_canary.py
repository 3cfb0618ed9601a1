"""Canary for the fast paths that reach under google-cloud-firestore and google-cloud-pubsub.

The Firestore writer and the Pub/Sub publisher call Commit / Publish on the client libraries' own gRPC channels with
plain protobuf messages, reading attributes the libraries do not promise to keep. A library upgrade that renames or
drops one must fail here, naming it, before it fails every write in production; the way out is the setting
HALO_PUBLIC_CLIENT_API=true (the libraries' public API, tested on both paths by the adapter tests). No network: the
clients are built with anonymous credentials and send nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.adapters import firestore as firestore_adapter
from shared.adapters import pubsub as pubsub_adapter
from shared.config import Settings, get_settings

WAY_OUT = "set HALO_PUBLIC_CLIENT_API=true and see docs/operations.md ('The client-library switch')"


def test_google_cloud_firestore_still_has_what_the_fast_path_uses() -> None:
    problems = firestore_adapter.private_api_problems()
    assert not problems, "google-cloud-firestore changed under the Firestore fast path:\n" + "\n".join(
        [*problems, WAY_OUT]
    )


def test_google_cloud_pubsub_still_has_what_the_fast_path_uses() -> None:
    problems = pubsub_adapter.private_api_problems()
    assert not problems, "google-cloud-pubsub changed under the Pub/Sub fast path:\n" + "\n".join([*problems, WAY_OUT])


@pytest.mark.parametrize("attribute", firestore_adapter.PRIVATE_ATTRIBUTES)
def test_the_canary_names_a_firestore_attribute_that_went_away(attribute: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from google.cloud import firestore

    def gone(_self: Any) -> Any:
        raise AttributeError(attribute)

    upgraded = type("UpgradedClient", (firestore.Client,), {attribute: property(gone)})
    monkeypatch.setattr(firestore, "Client", upgraded)
    problems = firestore_adapter.private_api_problems()
    assert any(attribute in problem for problem in problems), problems


def test_the_canary_names_a_pubsub_channel_that_went_away(monkeypatch: pytest.MonkeyPatch) -> None:
    from google.pubsub_v1.services.publisher import PublisherClient

    monkeypatch.setattr(PublisherClient, "transport", property(lambda _self: object()))
    problems = pubsub_adapter.private_api_problems()
    assert any("grpc_channel" in problem for problem in problems), problems


def test_the_canary_notices_a_renamed_rpc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(firestore_adapter, "COMMIT_METHOD", "/google.firestore.v2.Firestore/Commit")
    monkeypatch.setattr(pubsub_adapter, "PUBLISH_METHOD", "/google.pubsub.v2.Publisher/Publish")
    assert any("v2.Firestore/Commit" in problem for problem in firestore_adapter.private_api_problems())
    assert any("v2.Publisher/Publish" in problem for problem in pubsub_adapter.private_api_problems())


def test_a_fast_path_without_its_attribute_fails_naming_it_and_the_switch() -> None:
    writer = firestore_adapter.FirestoreWriter("demo-halo", public_api=False)
    writer._client = object()  # a client from a library version without _firestore_api
    with pytest.raises(RuntimeError, match=r"_firestore_api.*HALO_PUBLIC_CLIENT_API=true"):
        writer._commit_rpc()


def test_the_switch_is_a_setting_read_by_both_adapters(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().public_client_api is False, "the fast path is the default"
    monkeypatch.setenv("HALO_PUBLIC_CLIENT_API", "true")
    get_settings.cache_clear()
    try:
        assert firestore_adapter.FirestoreWriter("demo-halo").public_api is True
        assert pubsub_adapter.PubSubPublisher("demo-halo").public_api is True
        assert firestore_adapter.FirestoreWriter("demo-halo", public_api=False).public_api is False
    finally:
        monkeypatch.delenv("HALO_PUBLIC_CLIENT_API")
        get_settings.cache_clear()
    assert firestore_adapter.FirestoreWriter("demo-halo").public_api is False
