"""Where the tests find MongoDB, Redis and RabbitMQ.

1. `MONGODB_URL`, `REDIS_URL`, `RABBITMQ_URL` in the environment (what `make test` sets after
   `deploy/local/backing.sh start`);
2. otherwise, if a Docker engine answers, testcontainers starts MongoDB 7, Redis 7, RabbitMQ 3;
3. otherwise the run stops at once, saying how to start them. Tests never skip for this.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

ENV_VARS = ("MONGODB_URL", "REDIS_URL", "RABBITMQ_URL")

HOW_TO = (
    "No backing services: set MONGODB_URL, REDIS_URL and RABBITMQ_URL, or start them with "
    "'deploy/local/backing.sh start' and export the output of 'deploy/local/backing.sh env' "
    "('make test' does both), or run where a Docker engine is reachable so testcontainers "
    "can start MongoDB, Redis and RabbitMQ."
)


class BackingUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class BackingServices:
    mongodb_url: str
    redis_url: str
    rabbitmq_url: str
    source: str


def _docker_reachable() -> bool:
    try:
        import docker  # testcontainers' dependency

        client = docker.from_env(timeout=3)
        client.ping()
        client.close()
        return True
    except Exception:
        return False


class _Containers:
    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()

    def start(self) -> BackingServices:
        from testcontainers.mongodb import MongoDbContainer
        from testcontainers.rabbitmq import RabbitMqContainer
        from testcontainers.redis import RedisContainer

        mongo: Any = self._stack.enter_context(MongoDbContainer("mongo:7"))
        redis: Any = self._stack.enter_context(RedisContainer("redis:7"))
        rabbit: Any = self._stack.enter_context(RabbitMqContainer("rabbitmq:3"))
        rabbit_host = rabbit.get_container_host_ip()
        rabbit_port = rabbit.get_exposed_port(rabbit.port)
        return BackingServices(
            mongodb_url=mongo.get_connection_url(),
            redis_url=(
                f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(redis.port)}/0"
            ),
            rabbitmq_url=f"amqp://guest:guest@{rabbit_host}:{rabbit_port}/",
            source="testcontainers",
        )

    def stop(self) -> None:
        self._stack.close()


def resolve() -> tuple[BackingServices, _Containers | None]:
    values = [os.environ.get(name, "") for name in ENV_VARS]
    if all(values):
        return BackingServices(*values, source="environment"), None
    if any(values):
        missing = [name for name, value in zip(ENV_VARS, values, strict=True) if not value]
        raise BackingUnavailable(f"Only some backing services are configured; missing {missing}.")
    if _docker_reachable():
        containers = _Containers()
        return containers.start(), containers
    raise BackingUnavailable(HOW_TO)
