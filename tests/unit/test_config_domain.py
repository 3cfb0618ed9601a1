"""The operation's settings and prices as pure rules: defaults, ranges, tolerance of unknown keys."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.domain.config import AnonymityMode, AppConfig
from shared.domain.pricing import PricingTier


def test_the_defaults_are_the_products_and_within_their_own_ranges() -> None:
    """Whether the seeded rows agree with these defaults is checked against a migrated database."""
    config = AppConfig()

    assert config.free_trial_enabled is True
    assert config.free_trial_minutes == 15
    assert config.max_concurrent_clients == 3
    assert config.early_end_client is True
    assert config.early_end_mitra is False
    assert config.anonymity_mode is AnonymityMode.ALIAS
    assert AppConfig.model_validate(config.model_dump()) == config


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_concurrent_clients", 0),
        ("max_concurrent_clients", 21),
        ("free_trial_minutes", 0),
        ("free_trial_minutes", 121),
        ("extension_timeout_s", 4),
        ("pairing_search_window_s", 901),
        ("heartbeat_grace_s", 3601),
        ("goodbye_window_s", -1),
        ("payment_expiry_s", 59),
        ("anonymity_mode", "everyone_sees_everything"),
        ("retention_days", 29),
        ("hotline_numbers", "call a friend"),
        ("hotline_numbers", "119\n112"),
        ("hotline_numbers", "<b>119</b>"),
    ],
)
def test_values_outside_the_business_ranges_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as raised:
        AppConfig.model_validate({field: value})

    assert [error["loc"] for error in raised.value.errors()] == [(field,)]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_concurrent_clients", 1),
        ("max_concurrent_clients", 20),
        ("goodbye_window_s", 0),
        ("payment_expiry_s", 60),
        ("retention_days", 30),
        ("hotline_numbers", "112"),
        ("hotline_numbers", "119 ext 8 (SEJIWA), +62 21-500-454"),
    ],
)
def test_the_range_bounds_themselves_are_allowed(field: str, value: object) -> None:
    assert getattr(AppConfig.model_validate({field: value}), field) == value


def test_from_rows_ignores_keys_it_does_not_know() -> None:
    config = AppConfig.from_rows({"max_concurrent_clients": 5, "anonymity_mode": "client_choice", "retired_knob": 1})

    assert config.max_concurrent_clients == 5
    assert config.anonymity_mode is AnonymityMode.CLIENT_CHOICE
    assert config.free_trial_minutes == 15


def test_from_rows_still_validates_the_keys_it_knows() -> None:
    with pytest.raises(ValidationError):
        AppConfig.from_rows({"max_concurrent_clients": 0, "retired_knob": 1})


def test_unknown_fields_are_refused_outside_from_rows() -> None:
    with pytest.raises(ValidationError):
        AppConfig.model_validate({"retired_knob": 1})


def test_config_is_immutable() -> None:
    config = AppConfig()

    with pytest.raises(ValidationError):
        config.max_concurrent_clients = 4  # type: ignore[misc]


@pytest.mark.parametrize(("duration_s", "minutes"), [(1800, 30), (3600, 60), (5400, 90), (90, 1), (59, 0)])
def test_a_tier_shows_whole_minutes(duration_s: int, minutes: int) -> None:
    assert PricingTier(id="sesi", duration_s=duration_s, price=35000).minutes == minutes
