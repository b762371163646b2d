"""Configuration parsing and its inverse, used to start services as processes."""

from __future__ import annotations

import pytest

from oidc_common.config import ConfigError, Settings


def test_to_env_round_trips_through_from_env() -> None:
    original = Settings.from_env(
        "registration",
        {
            "PORT": "9001",
            "MONGODB_DATABASE": "db1",
            "REDIS_PREFIX": "p:",
            "TRUSTED_PROXIES": "10.0.0.0/8, ::1",
            "KEY_ENCRYPTION_KEY": "A" * 43,
            "ACCESS_LOG": "0",
            "INSTANCE_ID": "r7",
            "REAP_INTERVAL_SECONDS": "30",
            "SHUTDOWN_DRAIN_SECONDS": "0.5",
            "SHUTDOWN_GRACE_SECONDS": "12",
        },
    )
    assert original.reap_interval_seconds == 30
    assert (original.shutdown_drain_seconds, original.shutdown_grace_seconds) == (0.5, 12.0)
    assert Settings.from_env("registration", original.to_env()) == original


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "http"),
        ("PORT", "70000"),
        ("TRUSTED_PROXIES", "not-an-ip"),
        ("KEY_ENCRYPTION_KEY", "short"),
        ("ACCESS_TOKEN_TTL", "5"),
        ("REAP_INTERVAL_SECONDS", "0"),
        ("REAP_INTERVAL_SECONDS", "often"),
        ("SHUTDOWN_DRAIN_SECONDS", "-1"),
        ("SHUTDOWN_DRAIN_SECONDS", "nan"),
        ("SHUTDOWN_GRACE_SECONDS", "0"),
        ("SHUTDOWN_GRACE_SECONDS", "soon"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env("authorize", {name: value})


def test_defaults_need_no_environment() -> None:
    settings = Settings.from_env("tenant-settings", {})
    assert settings.port == 8003 and settings.key_encryption_key is None
    with pytest.raises(ConfigError, match="KEY_ENCRYPTION_KEY"):
        settings.require_kek()
