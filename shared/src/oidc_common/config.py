"""Configuration from environment variables only (documented in the README's table)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    """A configuration variable is missing or malformed; the message names it."""


def _parse_networks(name: str, raw: str) -> tuple[IPNetwork, ...]:
    networks: list[IPNetwork] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ConfigError(f"{name}: {item!r} is not an IP address or CIDR network") from exc
    return tuple(networks)


def _parse_int(name: str, raw: str, minimum: int, maximum: int) -> int:
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: {raw!r} is not an integer") from exc
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name}: {value} is outside {minimum}..{maximum}")
    return value


def _parse_seconds(name: str, raw: str, minimum: float, maximum: float) -> float:
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: {raw!r} is not a number of seconds") from exc
    if not minimum <= value <= maximum:  # also refuses nan and inf
        raise ConfigError(f"{name}: {value} is outside {minimum:g}..{maximum:g}")
    return value


def _parse_host_names(raw: str) -> tuple[str, ...]:
    # Host names as a URI carries them (lowercase, no port); compared exactly.
    return tuple(dict.fromkeys(part.strip().lower() for part in raw.split(",") if part.strip()))


def parse_key_encryption_key(raw: str) -> bytes:
    """Decode the base64/base64url key-encryption key; it must be exactly 32 bytes."""
    padded = raw.strip() + "=" * (-len(raw.strip()) % 4)
    try:
        key = base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
    except (binascii.Error, ValueError) as exc:
        raise ConfigError("KEY_ENCRYPTION_KEY: not valid base64") from exc
    if len(key) != 32:
        raise ConfigError("KEY_ENCRYPTION_KEY: must decode to exactly 32 bytes (AES-256)")
    return key


DEFAULT_PORTS: Mapping[str, int] = {
    "registration": 8001,
    "authorize": 8002,
    "tenant-settings": 8003,
}


@dataclass(frozen=True)
class Settings:
    """Everything a service reads from its environment, parsed and validated once."""

    service_name: str
    bind_host: str = "127.0.0.1"
    port: int = 8000
    mongodb_url: str = "mongodb://127.0.0.1:27017/"
    mongodb_database: str = "oidc"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = ""
    rabbitmq_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    events_exchange: str = "oidc.events"
    trusted_proxies: tuple[IPNetwork, ...] = field(
        default_factory=lambda: _parse_networks("TRUSTED_PROXIES", "127.0.0.1/32,::1/128")
    )
    key_encryption_key: bytes | None = None
    log_level: str = "INFO"
    access_log: bool = True
    access_token_ttl: int = 3600
    instance_id: str = ""
    reap_interval_seconds: int = 300
    # Argon2id cost of user passwords: RFC 9106 §4's second recommended option (t=3, 64 MiB)
    # on one lane. Changing them rehashes each password at its owner's next successful login.
    argon2_time_cost: int = 3
    argon2_memory_cost: int = 65536  # KiB
    argon2_parallelism: int = 1
    # Client ID Metadata Documents (authorize): an extra CA bundle trusted next to the system's
    # store, and hosts exempt from the public-address guard (tests, on-premise). Both relax
    # nothing by default.
    cimd_ca_file: str | None = None
    cimd_private_hosts: tuple[str, ...] = ()
    # Graceful shutdown (oidc_common.service): after SIGTERM, /readyz answers 503 and the
    # process keeps serving for `shutdown_drain_seconds` (so a load balancer that polls
    # readiness stops sending first), then stops accepting and gives in-flight requests and
    # the flush of pending writes and events `shutdown_grace_seconds` in all.
    shutdown_drain_seconds: float = 5.0
    shutdown_grace_seconds: float = 20.0

    @classmethod
    def from_env(cls, service_name: str, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        kek_raw = env.get("KEY_ENCRYPTION_KEY", "")
        return cls(
            service_name=service_name,
            bind_host=env.get("BIND_HOST", "127.0.0.1"),
            port=_parse_int(
                "PORT", env.get("PORT", str(DEFAULT_PORTS.get(service_name, 8000))), 0, 65535
            ),
            mongodb_url=env.get("MONGODB_URL", cls.mongodb_url),
            mongodb_database=env.get("MONGODB_DATABASE", cls.mongodb_database),
            redis_url=env.get("REDIS_URL", cls.redis_url),
            redis_prefix=env.get("REDIS_PREFIX", ""),
            rabbitmq_url=env.get("RABBITMQ_URL", cls.rabbitmq_url),
            events_exchange=env.get("EVENTS_EXCHANGE", cls.events_exchange),
            trusted_proxies=_parse_networks(
                "TRUSTED_PROXIES", env.get("TRUSTED_PROXIES", "127.0.0.1/32,::1/128")
            ),
            key_encryption_key=parse_key_encryption_key(kek_raw) if kek_raw else None,
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            access_log=env.get("ACCESS_LOG", "1") not in {"0", "false", "no"},
            access_token_ttl=_parse_int(
                "ACCESS_TOKEN_TTL", env.get("ACCESS_TOKEN_TTL", "3600"), 60, 86400
            ),
            instance_id=env.get("INSTANCE_ID", ""),
            reap_interval_seconds=_parse_int(
                "REAP_INTERVAL_SECONDS", env.get("REAP_INTERVAL_SECONDS", "300"), 1, 86400
            ),
            argon2_time_cost=_parse_int(
                "ARGON2_TIME_COST", env.get("ARGON2_TIME_COST", "3"), 1, 64
            ),
            # At least 1 MiB (Argon2 needs 8 KiB per lane; tests run with 8 MiB), at most 4 GiB.
            argon2_memory_cost=_parse_int(
                "ARGON2_MEMORY_COST", env.get("ARGON2_MEMORY_COST", "65536"), 1024, 4 * 1024 * 1024
            ),
            argon2_parallelism=_parse_int(
                "ARGON2_PARALLELISM", env.get("ARGON2_PARALLELISM", "1"), 1, 64
            ),
            cimd_ca_file=env.get("CIMD_CA_FILE") or None,
            cimd_private_hosts=_parse_host_names(env.get("CIMD_PRIVATE_HOSTS", "")),
            shutdown_drain_seconds=_parse_seconds(
                "SHUTDOWN_DRAIN_SECONDS", env.get("SHUTDOWN_DRAIN_SECONDS", "5"), 0, 300
            ),
            shutdown_grace_seconds=_parse_seconds(
                "SHUTDOWN_GRACE_SECONDS", env.get("SHUTDOWN_GRACE_SECONDS", "20"), 0.1, 3600
            ),
        )

    def to_env(self) -> dict[str, str]:
        """These settings as the environment variables `from_env` reads (to start a process)."""
        env = {
            "BIND_HOST": self.bind_host,
            "PORT": str(self.port),
            "MONGODB_URL": self.mongodb_url,
            "MONGODB_DATABASE": self.mongodb_database,
            "REDIS_URL": self.redis_url,
            "REDIS_PREFIX": self.redis_prefix,
            "RABBITMQ_URL": self.rabbitmq_url,
            "EVENTS_EXCHANGE": self.events_exchange,
            "TRUSTED_PROXIES": ",".join(str(network) for network in self.trusted_proxies),
            "LOG_LEVEL": self.log_level,
            "ACCESS_LOG": "1" if self.access_log else "0",
            "ACCESS_TOKEN_TTL": str(self.access_token_ttl),
            "INSTANCE_ID": self.instance_id,
            "REAP_INTERVAL_SECONDS": str(self.reap_interval_seconds),
            "ARGON2_TIME_COST": str(self.argon2_time_cost),
            "ARGON2_MEMORY_COST": str(self.argon2_memory_cost),
            "ARGON2_PARALLELISM": str(self.argon2_parallelism),
            "CIMD_CA_FILE": self.cimd_ca_file or "",
            "CIMD_PRIVATE_HOSTS": ",".join(self.cimd_private_hosts),
            "SHUTDOWN_DRAIN_SECONDS": repr(self.shutdown_drain_seconds),
            "SHUTDOWN_GRACE_SECONDS": repr(self.shutdown_grace_seconds),
        }
        if self.key_encryption_key is not None:
            env["KEY_ENCRYPTION_KEY"] = base64.urlsafe_b64encode(self.key_encryption_key).decode()
        return env

    def require_kek(self) -> bytes:
        if self.key_encryption_key is None:
            raise ConfigError(
                "KEY_ENCRYPTION_KEY is not set: signing keys are stored encrypted and cannot be "
                'created or read without it (generate one with: python -c "import base64,os;'
                'print(base64.urlsafe_b64encode(os.urandom(32)).decode())")'
            )
        return self.key_encryption_key
