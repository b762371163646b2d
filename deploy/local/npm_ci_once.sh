#!/usr/bin/env bash
# npm_ci_once.sh DIR LABEL NEEDED_FOR: install DIR's Node dependencies exactly as its
# package-lock.json pins them (`npm ci`), once: skipped while DIR/node_modules was installed
# from the current lock file (a stamp holding the lock's SHA-256). Fails, loudly, without
# node or npm. Used for the MCP client of the e2e tests (`make mcp-client`) and the
# benchmark's peer (bench/registration.py).
set -euo pipefail
dir=$1 label=$2 needed_for=$3
cd "$dir"
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "[$label] ERROR: node and npm are required for $needed_for: install Node.js" \
        "20.19 or newer with npm (e.g. apt-get install nodejs npm)" >&2
    exit 1
fi
stamp=node_modules/.package-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
echo "[$label] installing $dir from package-lock.json (npm ci)"
npm ci --no-audit --no-fund --loglevel=error
echo "$want" >"$stamp"
