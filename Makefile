# Two commands matter: `make run` (the whole stack on this machine) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# uv from the PATH, else the one pip installs for python3, run as a module (wherever pip put
# its executable, and whether or not that folder is on the PATH).
UV ?= $(shell command -v uv 2>/dev/null || echo python3 -m uv)
PY := .venv/bin/python
BACKING := deploy/local/backing.sh
BACKING_ENV = eval "$$($(BACKING) env)"

.PHONY: help install backing browser mcp-client lint deploy-check test run stop wrk bench bench-propagation bench-ab clean

help:
	@echo "make run      start backing services, the three services and the gateway on :8080"
	@echo "             (REGISTRATION_REPLICAS=3: three registration processes behind the gateway)"
	@echo "make test     install (and chromium for the browser tests), start backing services, lint, pytest"
	@echo "make stop     stop everything 'make run' or 'make test' started"
	@echo "make lint     ruff + mypy"
	@echo "make deploy-check   compose schema, kustomize + Kubernetes schemas, hadolint, nginx -t (no Docker)"
	@echo "make bench    settings propagation (idle, then 3 replicas under load), registration"
	@echo "             throughput, latency and CPU per registration next to a bare-aiohttp"
	@echo "             baseline and node-oidc-provider (npm ci on first use), the token endpoint"
	@echo "make bench-propagation   PATCH -> registration gate latency only (idle and under load)"
	@echo "make bench-ab A=REV B=REV   registration at two revisions, alternating runs (B empty:"
	@echo "             the working tree; defaults A=HEAD B=)"

install:
	@$(UV) --version >/dev/null 2>&1 || { echo "[make] installing uv from PyPI"; \
		python3 -m pip install --quiet --root-user-action=ignore --user --force-reinstall uv \
		|| python3 -m pip install --quiet --root-user-action=ignore --force-reinstall uv; }
	@echo "[make] syncing the Python workspace from uv.lock"
	@$(UV) sync --all-packages --frozen --quiet

backing:
	@$(BACKING) start

# The browser tests drive Debian's Chromium (never a downloaded browser); CHROMIUM names
# another executable.
CHROMIUM ?= /usr/bin/chromium
browser:
	@[ -x "$(CHROMIUM)" ] || { echo "[make] installing chromium (browser tests)"; \
		sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		export DEBIAN_FRONTEND=noninteractive; \
		pkgs="chromium fonts-liberation"; \
		$$sudo apt-get install -y -qq --no-install-recommends $$pkgs >/dev/null 2>&1 \
		|| { $$sudo apt-get update -qq && $$sudo apt-get install -y -qq --no-install-recommends $$pkgs >/dev/null; } \
		|| { echo "[make] ERROR: could not install chromium (apt-get)" >&2; exit 1; }; }

# The MCP TypeScript SDK test's Node client: `npm ci` from tests/e2e/mcp/package-lock.json, once
# per lock file (an error without node/npm).
mcp-client:
	@deploy/local/npm_ci_once.sh tests/e2e/mcp mcp-client "the MCP TypeScript SDK test"
	@deploy/local/npm_ci_once.sh tests/e2e/a11y a11y "the browser tests' accessibility check (axe-core)"

lint: install
	@echo "[make] ruff"
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check --quiet .
	@echo "[make] mypy"
	@.venv/bin/mypy

# Every deployment path checked without a Docker engine (deploy/check.py): the gateway's
# renderings with nginx -t, docker-compose.yml against the Compose spec, kustomize build of
# the Kubernetes base and overlay against Kubernetes schemas, hadolint. Its tools are pinned
# dev dependencies (uv.lock), kustomize built once from its Go module into .local/tools/.
deploy-check: install
	@$(PY) deploy/check.py

test: install backing browser mcp-client lint deploy-check
	@echo "[make] go test (deploy/local/ferretdb)"
	@cd deploy/local/ferretdb && go test ./...
	@echo "[make] pytest"
	@$(BACKING_ENV) && $(PY) -m pytest $(PYTEST_ARGS)

# `make run REGISTRATION_REPLICAS=3`: three registration processes behind the gateway.
REGISTRATION_REPLICAS ?= 1
GATEWAY_PORT ?= 8080
run: install
	@REGISTRATION_REPLICAS=$(REGISTRATION_REPLICAS) GATEWAY_PORT=$(GATEWAY_PORT) $(PY) deploy/local/stack.py run

stop:
	@python3 deploy/local/stack.py stop

# The peer, node-oidc-provider, is installed by bench/registration.py on first use
# (deploy/local/npm_ci_once.sh: `npm ci` once per lock file; an error without node/npm).
wrk:
	@command -v wrk >/dev/null || { echo "[make] installing wrk (load generator)"; \
		apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }; }

bench: install backing wrk
	@$(BACKING_ENV) && $(PY) bench/propagation.py && $(PY) bench/registration.py && $(PY) bench/token_endpoint.py

bench-propagation: install backing wrk
	@$(BACKING_ENV) && $(PY) bench/propagation.py

# Two revisions of registration measured side by side in time (bench/ab.py): A and B are
# git revisions; B empty means the working tree, uncommitted changes included.
A ?= HEAD
B ?=
bench-ab: install backing wrk
	@$(BACKING_ENV) && $(PY) bench/ab.py --a "$(A)" --b "$(B)"

clean: stop
	rm -rf .local .venv
