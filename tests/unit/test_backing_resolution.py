"""How the test run finds its backing services (pure logic: no service is touched)."""

from __future__ import annotations

import pytest

from tests.support import backing


def test_environment_urls_are_used_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGODB_URL", "mongodb://db:1/")
    monkeypatch.setenv("REDIS_URL", "redis://cache:2/0")
    monkeypatch.setenv("RABBITMQ_URL", "amqp://broker:3/")
    found, containers = backing.resolve()
    assert containers is None
    assert (found.mongodb_url, found.redis_url, found.rabbitmq_url, found.source) == (
        "mongodb://db:1/",
        "redis://cache:2/0",
        "amqp://broker:3/",
        "environment",
    )


def test_partial_configuration_is_refused_naming_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MONGODB_URL", "mongodb://db:1/")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("RABBITMQ_URL", raising=False)
    with pytest.raises(backing.BackingUnavailable, match="REDIS_URL"):
        backing.resolve()


def test_neither_services_nor_docker_fails_with_instructions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in backing.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(backing, "_docker_reachable", lambda: False)
    with pytest.raises(backing.BackingUnavailable) as failure:
        backing.resolve()
    message = str(failure.value)
    assert "deploy/local/backing.sh start" in message and "Docker" in message
