"""Fixtures of the deployment tests: the gateway definition, the deployment check's helpers,
the kustomize builds (kustomize built once from its pinned Go module if `make deploy-check`
has not built it yet)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.support.stack import load_stack_module

ROOT = Path(__file__).resolve().parents[2]


def load_script(name: str, path: Path) -> ModuleType:
    """A script of deploy/ as a module, loaded once (by the launcher's own loader)."""
    loaded: ModuleType = load_stack_module().load_script(name, path)
    return loaded


@pytest.fixture(scope="session")
def gateway() -> ModuleType:
    # The same module name stack.py uses, so both share one copy.
    return load_script("dcr_gateway_definition", ROOT / "deploy" / "nginx" / "gateway.py")


@pytest.fixture(scope="session")
def deploy_check() -> ModuleType:
    return load_script("dcr_deploy_check", ROOT / "deploy" / "check.py")


@pytest.fixture(scope="session")
def certificates() -> ModuleType:
    return load_script("dcr_self_signed_cert", ROOT / "deploy" / "nginx" / "self_signed_cert.py")


@pytest.fixture(scope="session")
def nginx(deploy_check: ModuleType) -> str:
    path: str = deploy_check.ensure_nginx()
    return path


@pytest.fixture(scope="session")
def k8s_builds(deploy_check: ModuleType) -> dict[str, list[dict[str, Any]]]:
    """`kustomize build` of the base and the production overlay, as lists of resources."""
    kustomize = deploy_check.ensure_kustomize()
    return {
        overlay.rsplit("/", 1)[-1]: deploy_check.kustomize_build(kustomize, overlay)
        for overlay in deploy_check.OVERLAYS
    }
