"""The image as far as it can be judged without a Docker engine: what the Dockerfile does,
what the build context lets in (.dockerignore), and the HEALTHCHECK script."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT
from tests.support.stack import free_port

DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_multi_stage_slim_from_the_lock_file_only() -> None:
    steps = instructions()
    stages = [rest for keyword, rest in steps if keyword == "FROM"]
    assert stages == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim-bookworm") in steps
    syncs = [rest for keyword, rest in steps if keyword == "RUN" and "uv sync" in rest]
    assert len(syncs) == 2
    for sync in syncs:
        assert "--frozen" in sync and "--no-dev" in sync, sync
    # The runtime stage gets the environment alone: no source tree, no uv, no lock file.
    second_from = [i for i, (keyword, _) in enumerate(steps) if keyword == "FROM"][1]
    runtime = steps[second_from:]
    copies = [rest for keyword, rest in runtime if keyword == "COPY"]
    assert copies == [
        "--from=build /opt/venv /opt/venv",
        "deploy/healthcheck.py /usr/local/bin/healthcheck",
    ]


def test_non_root_with_healthcheck_and_labels() -> None:
    steps = dict(instructions()[::-1])  # the last of each keyword
    assert steps["USER"] == "10001:10001"
    assert steps["HEALTHCHECK"].endswith('CMD ["python", "/usr/local/bin/healthcheck"]')
    labels = " ".join(rest for keyword, rest in instructions() if keyword == "LABEL")
    for label in ("title", "description", "version", "revision", "created"):
        assert f"org.opencontainers.image.{label}=" in labels
    assert steps["CMD"] == '["registration"]'
    assert "one image" in DOCKERFILE.lower() and "why" in DOCKERFILE.lower()


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule, enough for these patterns: the last matching pattern
    wins, `!` re-includes, a pattern matching a folder covers what is inside it."""

    def regex(pattern: str) -> re.Pattern[str]:
        out = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                out += ".*"
                i += 2
            elif pattern[i] == "*":
                out += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                out += "[^/]"
                i += 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                out += pattern[i : end + 1]
                i = end + 1
            else:
                out += re.escape(pattern[i])
                i += 1
        return re.compile(out + "$")

    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for raw in patterns:
        exclude = not raw.startswith("!")
        compiled = regex(raw.removeprefix("!"))
        if any(compiled.match(prefix) for prefix in prefixes):
            ignored = exclude
    return ignored


@pytest.fixture(scope="module")
def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_build_context_holds_what_the_build_copies(dockerignore: list[str]) -> None:
    copied = [
        rest.split()[0]
        for keyword, rest in instructions()
        if keyword == "COPY" and not rest.startswith("--from")
    ]
    for source in copied:
        path = ROOT / source
        assert path.exists(), source
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            if "__pycache__" in relative:
                continue
            assert not _ignored(relative, dockerignore), relative


@pytest.mark.parametrize(
    "path",
    [
        ".local/key-encryption-key",
        ".local/demo-tenant.json",
        ".local/tls/tls.key",
        ".venv/bin/python",
        ".env",
        "tests/e2e/mcp/node_modules/x/index.js",
        "tests/unit/test_config.py",
        ".pytest_cache/v/cache/lastfailed",
        ".hypothesis/examples/x",
        ".git/config",
        "shared/src/oidc_common/__pycache__/config.cpython-311.pyc",
        "services/authorize/src/authorize_service/.env",
        "deploy/local/ferretdb/ferretdb",
        "docker-compose.yml",
        "README.md",
    ],
)
def test_the_build_context_keeps_out_state_secrets_and_artefacts(
    dockerignore: list[str], path: str
) -> None:
    assert _ignored(path, dockerignore)


class _Readyz(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/readyz" else 404)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def readyz() -> Iterator[tuple[int, type[_Readyz]]]:
    handler = type("Handler", (_Readyz,), {})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()


def _healthcheck(port: int) -> int:
    env = {"PORT": str(port), "PATH": "/usr/bin:/bin"}
    script = Path(ROOT / "deploy" / "healthcheck.py")
    return subprocess.run([sys.executable, str(script)], env=env, check=False).returncode


def test_the_healthcheck_follows_readiness(readyz: tuple[int, type[_Readyz]]) -> None:
    port, handler = readyz
    assert _healthcheck(port) == 0
    handler.status = 503  # a backing service down, or shutting down
    assert _healthcheck(port) == 1
    assert _healthcheck(free_port()) == 1  # nothing listening
