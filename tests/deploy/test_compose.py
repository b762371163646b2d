"""docker-compose.yml beyond its schema (`make deploy-check` validates that): what starts
when, what persists, where secrets come from, and the demo tenant's one-shot script."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import ROOT

APP_SERVICES = ("tenant-settings", "authorize", "registration")
BACKING = ("mongodb", "redis", "rabbitmq")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_the_stack_is_all_there(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {*APP_SERVICES, *BACKING, "gateway", "demo-tenant"} <= services.keys()
    assert services["mongodb"]["image"].startswith("mongo:7")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["rabbitmq"]["image"].startswith("rabbitmq:3")


def test_services_start_once_their_dependencies_are_healthy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in BACKING:
        assert "healthcheck" in services[name], name
    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        assert {d: depends[d]["condition"] for d in BACKING} == dict.fromkeys(
            BACKING, "service_healthy"
        ), name
        assert services[name]["command"] == [name]
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert "healthcheck" not in services[name], "the image's HEALTHCHECK (/readyz) applies"
    gateway = services["gateway"]["depends_on"]
    assert {d: gateway[d]["condition"] for d in APP_SERVICES} == dict.fromkeys(
        APP_SERVICES, "service_healthy"
    )
    assert services["demo-tenant"]["depends_on"]["mongodb"]["condition"] == "service_healthy"
    assert services["demo-tenant"]["restart"] == "no"


def test_scaling_registration_needs_no_fixed_names_or_ports(compose: dict[str, Any]) -> None:
    registration = compose["services"]["registration"]
    assert "container_name" not in registration and "ports" not in registration
    assert "hostname" not in registration
    [volume] = compose["services"]["gateway"]["volumes"]
    assert volume.startswith("./deploy/nginx/rendered/compose.conf:")


def test_redis_persists_what_a_restart_must_not_lose(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--appendfsync everysec" in command
    assert any(v.endswith(":/data") for v in redis["volumes"])
    assert any(v.startswith("mongodb:") for v in compose["services"]["mongodb"]["volumes"])
    rabbitmq = compose["services"]["rabbitmq"]
    assert rabbitmq["hostname"] == "rabbitmq", "its data is kept under its node name"
    assert set(compose["volumes"]) >= {"mongodb", "redis", "rabbitmq"}


def test_the_services_run_locked_down(compose: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
        assert service["security_opt"] == ["no-new-privileges:true"], name
        # Longer than the services' drain (5 s) and grace (20 s) periods.
        assert int(service["stop_grace_period"].removesuffix("s")) > 25


def _variables(text: str) -> dict[str, str]:
    """Every ${NAME...} the file interpolates: name -> what follows the name."""
    found: dict[str, str] = {}
    for match in re.finditer(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)([^}]*)\}", text):
        found.setdefault(match.group(1), match.group(2))
    return found


def test_every_variable_is_documented_and_secrets_have_no_default() -> None:
    variables = _variables((ROOT / "docker-compose.yml").read_text())
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?([A-Z_][A-Z0-9_]*)=", example, re.MULTILINE))
    assert variables.keys() <= documented, variables.keys() - documented
    for secret in ("KEY_ENCRYPTION_KEY", "MONGODB_PASSWORD", "REDIS_PASSWORD", "RABBITMQ_PASSWORD"):
        assert variables[secret].startswith(":?"), f"{secret} must be required"
        assert re.search(rf"^{secret}=$", example, re.MULTILINE), f"{secret} left empty"
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_the_schema_check_refuses_a_broken_file(tmp_path: Path) -> None:
    """`make deploy-check`'s validator is strict: a misspelt key fails it."""
    broken = (ROOT / "docker-compose.yml").read_text().replace("depends_on:", "depends_onn:", 1)
    path = tmp_path / "docker-compose.yml"
    path.write_text(broken)
    command = [str(ROOT / ".venv/bin/check-jsonschema"), "--builtin-schema", "vendor.compose-spec"]
    assert subprocess.run([*command, str(path)], capture_output=True, check=False).returncode == 1
    good = subprocess.run(
        [*command, str(ROOT / "docker-compose.yml")], capture_output=True, check=False
    )
    assert good.returncode == 0


def _demo_tenant(
    compose: dict[str, Any], tmp_path: Path, exit_code: int, output: str
) -> subprocess.CompletedProcess[str]:
    """Runs the one-shot's command with a stand-in `tenant-settings` on the PATH."""
    script = compose["services"]["demo-tenant"]["command"][2].replace("$$", "$")
    fake = tmp_path / "tenant-settings"
    fake.write_text(f"#!/bin/sh\necho '{output}' >&2\necho \"args: $*\"\nexit {exit_code}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "DEMO_DOMAIN": "localhost"}
    return subprocess.run(
        ["sh", "-c", script], env=env, capture_output=True, text=True, check=False
    )


def test_the_demo_tenant_is_created_once_without_a_hand(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    created = _demo_tenant(compose, tmp_path, 0, "client_id: abc")
    assert created.returncode == 0
    assert "args: create-tenant --domain localhost --name Demo tenant" in created.stdout
    assert "client_id: abc" in created.stdout
    again = _demo_tenant(
        compose, tmp_path, 1, "tenant-settings: a tenant for domain 'localhost' already exists"
    )
    assert again.returncode == 0 and "rotate-management-secret" in again.stdout
    failed = _demo_tenant(compose, tmp_path, 2, "configuration error: KEY_ENCRYPTION_KEY")
    assert failed.returncode == 1 and "configuration error" in failed.stderr


def test_the_tls_profile_is_the_production_rendering(
    compose: dict[str, Any], gateway: ModuleType
) -> None:
    service = compose["services"]["gateway-tls"]
    assert service["profiles"] == ["tls"]
    conf, tls = service["volumes"]
    assert conf.startswith("./deploy/nginx/rendered/compose-tls.conf:/etc/nginx/gateway.conf")
    assert tls.endswith(":/etc/nginx/tls:ro") and "TLS_CERT_DIR" in tls
    target = {t.name: t for t in gateway.committed_targets()}["compose-tls"]
    assert target.tls.certificate.startswith("/etc/nginx/tls/")
