#!/usr/bin/env bash
# Install the benchmark's peer, node-oidc-provider, exactly as package-lock.json pins it
# (`npm ci`), once: skipped while node_modules was installed from the current lock file (a
# stamp holding the lock's SHA-256; the same pattern as tests/e2e/mcp/install.sh). Run by
# bench/registration.py before it starts the peer; fails, loudly, without node or npm.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "[bench-peer] ERROR: node and npm are required for the benchmark's peer" \
        "(node-oidc-provider, bench/peer/): install Node.js 20.19 or newer with npm" \
        "(e.g. apt-get install nodejs npm)" >&2
    exit 1
fi
stamp=node_modules/.package-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
echo "[bench-peer] installing node-oidc-provider from package-lock.json (npm ci)"
npm ci --no-audit --no-fund --loglevel=error
echo "$want" >"$stamp"
