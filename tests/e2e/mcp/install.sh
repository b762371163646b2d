#!/usr/bin/env bash
# Install the MCP client's Node dependencies exactly as package-lock.json pins them (`npm ci`),
# once: skipped while node_modules was installed from the current lock file (a stamp holding
# the lock's SHA-256). Used by `make mcp-client` and by the test's fixture; fails, loudly,
# without npm.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "[mcp-client] ERROR: node and npm are required for the MCP TypeScript SDK test" \
        "(tests/e2e/test_mcp_typescript_sdk.py): install Node.js 20 or newer with npm" \
        "(e.g. apt-get install nodejs npm)" >&2
    exit 1
fi
stamp=node_modules/.package-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
echo "[mcp-client] installing @modelcontextprotocol/sdk from package-lock.json (npm ci)"
npm ci --no-audit --no-fund --loglevel=error
echo "$want" >"$stamp"
