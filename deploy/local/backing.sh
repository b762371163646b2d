#!/usr/bin/env bash
# Backing services without Docker: Redis, RabbitMQ and FerretDB (MongoDB-compatible, SQLite
# backend) on 127.0.0.1. Installs what is missing, reuses a service that already answers,
# waits until each really speaks its protocol, and stops only what it started (PID files).
#
#   deploy/local/backing.sh start|stop|status|env
#
# Ports: REDIS_PORT (6379), RABBITMQ_PORT (5672), MONGODB_PORT (27017).
# State lives under .local/ (git-ignored); STATE_DIR overrides it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=${STATE_DIR:-$ROOT/.local}
RUN=$STATE/run
REDIS_PORT=${REDIS_PORT:-6379}
RABBITMQ_PORT=${RABBITMQ_PORT:-5672}
RABBITMQ_DIST_PORT=${RABBITMQ_DIST_PORT:-$((RABBITMQ_PORT + 20000))}
MONGODB_PORT=${MONGODB_PORT:-27017}
FERRETDB_BIN=$STATE/bin/ferretdb
PROBE="python3 $ROOT/deploy/local/probe.py"

say() { printf '[backing] %s\n' "$*"; }
fail() { printf '[backing] ERROR: %s\n' "$*" >&2; exit 1; }

ensure_packages() {
    local missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
    command -v nginx >/dev/null || missing+=(nginx-light)
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq || fail "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null || fail "apt-get install ${missing[*]} failed"
}

ensure_ferretdb() {
    local src=$ROOT/deploy/local/ferretdb
    # Up to date when no source file (Go, go.mod, go.sum) is newer than the binary.
    if [ -x "$FERRETDB_BIN" ] && [ -z "$(find "$src" -maxdepth 1 -newer "$FERRETDB_BIN" \
        \( -name '*.go' -o -name go.mod -o -name go.sum \) -print -quit)" ]; then
        return 0
    fi
    command -v go >/dev/null || fail "FerretDB: the Go toolchain is needed to build it (deploy/local/ferretdb)"
    say "building FerretDB from its Go module (pinned in deploy/local/ferretdb/go.mod; ~1-2 min the first time)"
    mkdir -p "$STATE/bin"
    (cd "$src" && go build -trimpath -o "$FERRETDB_BIN" .) || fail "FerretDB: go build failed"
}

wait_for() { # name kind port seconds
    local name=$1 kind=$2 port=$3 seconds=$4 i
    for ((i = 0; i < seconds * 5; i++)); do
        $PROBE "$kind" 127.0.0.1 "$port" && { say "$name is up on 127.0.0.1:$port"; return 0; }
        sleep 0.2
    done
    return 1
}

start_redis() {
    if $PROBE redis 127.0.0.1 "$REDIS_PORT"; then
        say "redis already answers on $REDIS_PORT, reusing it"
        # The promises of shared/src/oidc_common/redis_client.py need the append-only file.
        if command -v redis-cli >/dev/null &&
            redis-cli -p "$REDIS_PORT" config get appendonly 2>/dev/null | grep -qx no; then
            say "warning: that redis runs without its append-only file (deploy/local/redis.conf turns it on)"
        fi
        return
    fi
    mkdir -p "$STATE/redis" "$RUN"
    say "starting redis on 127.0.0.1:$REDIS_PORT (append-only file in $STATE/redis)"
    # Persistence settings in deploy/local/redis.conf; the rest is per machine.
    redis-server "$ROOT/deploy/local/redis.conf" --port "$REDIS_PORT" --dir "$STATE/redis" \
        --daemonize yes --pidfile "$RUN/redis.pid" \
        --logfile "$STATE/redis/redis.log" >/dev/null
    wait_for redis redis "$REDIS_PORT" 15 || fail "redis did not answer on $REDIS_PORT (see $STATE/redis/redis.log)"
}

start_rabbitmq() {
    if $PROBE amqp 127.0.0.1 "$RABBITMQ_PORT"; then say "rabbitmq already answers on $RABBITMQ_PORT, reusing it"; return; fi
    local base=$STATE/rabbitmq
    mkdir -p "$base/mnesia" "$base/log" "$RUN"
    say "starting rabbitmq on 127.0.0.1:$RABBITMQ_PORT (takes a few seconds)"
    # Erlang starts its port mapper (epmd) if none runs; remember whether that was us.
    epmd -names >/dev/null 2>&1 || touch "$RUN/epmd.ours"
    # The Debian wrapper insists on the rabbitmq user and /var/lib; the real script under
    # /usr/lib runs as whoever calls it with state in our own folder.
    (
        export HOME=$base RABBITMQ_HOME=/usr/lib/rabbitmq
        export RABBITMQ_NODENAME=dcr-$RABBITMQ_PORT@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
        export RABBITMQ_NODE_PORT=$RABBITMQ_PORT RABBITMQ_DIST_PORT=$RABBITMQ_DIST_PORT
        export RABBITMQ_MNESIA_BASE=$base/mnesia RABBITMQ_LOG_BASE=$base/log
        export RABBITMQ_PID_FILE=$RUN/rabbitmq.pid RABBITMQ_ENABLED_PLUGINS_FILE=$base/enabled_plugins
        export RABBITMQ_CONFIG_FILE=$base/rabbitmq RABBITMQ_ADVANCED_CONFIG_FILE=$base/advanced.config
        export ERL_EPMD_ADDRESS=127.0.0.1
        echo '[].' >"$base/enabled_plugins"
        printf 'loopback_users = none\nlisteners.tcp.default = 127.0.0.1:%s\n' "$RABBITMQ_PORT" >"$base/rabbitmq.conf"
        nohup /usr/lib/rabbitmq/bin/rabbitmq-server >"$base/log/startup.log" 2>&1 &
        echo $! >"$RUN/rabbitmq.wrapper.pid"
    )
    wait_for rabbitmq amqp "$RABBITMQ_PORT" 90 || fail "rabbitmq did not answer on $RABBITMQ_PORT (see $base/log/)"
}

start_ferretdb() {
    if $PROBE mongodb 127.0.0.1 "$MONGODB_PORT"; then say "a MongoDB-compatible server already answers on $MONGODB_PORT, reusing it"; return; fi
    ensure_ferretdb
    mkdir -p "$STATE/ferretdb" "$RUN"
    say "starting ferretdb on 127.0.0.1:$MONGODB_PORT"
    nohup "$FERRETDB_BIN" -listen "127.0.0.1:$MONGODB_PORT" -data "$STATE/ferretdb/data" \
        >"$STATE/ferretdb/ferretdb.log" 2>&1 &
    echo $! >"$RUN/ferretdb.pid"
    wait_for ferretdb mongodb "$MONGODB_PORT" 30 || fail "ferretdb did not answer on $MONGODB_PORT (see $STATE/ferretdb/ferretdb.log)"
}

stop_pidfile() { # name pidfile
    local name=$1 file=$2 pid
    [ -f "$file" ] || return 0
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
        say "stopping $name (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

stop_all() {
    stop_pidfile ferretdb "$RUN/ferretdb.pid"
    stop_pidfile redis "$RUN/redis.pid"
    if [ -f "$RUN/rabbitmq.pid" ]; then
        # Stop the Erlang VM itself; the wrapper shell exits with it.
        stop_pidfile rabbitmq "$RUN/rabbitmq.pid"
        stop_pidfile "rabbitmq wrapper" "$RUN/rabbitmq.wrapper.pid"
    else
        stop_pidfile rabbitmq "$RUN/rabbitmq.wrapper.pid"
    fi
    # The port mapper RabbitMQ started, once no Erlang node is registered with it any more.
    if [ -f "$RUN/epmd.ours" ] && ! epmd -names 2>/dev/null | grep -q '^name '; then
        say "stopping epmd (the Erlang port mapper rabbitmq started)"
        epmd -kill >/dev/null 2>&1 || true
        rm -f "$RUN/epmd.ours"
    fi
}

print_env() {
    echo "export MONGODB_URL=mongodb://127.0.0.1:$MONGODB_PORT/"
    echo "export REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
    echo "export RABBITMQ_URL=amqp://guest:guest@127.0.0.1:$RABBITMQ_PORT/"
}

case "${1:-}" in
    start)
        ensure_packages
        start_redis
        start_rabbitmq
        start_ferretdb
        ;;
    stop) stop_all ;;
    status)
        $PROBE redis 127.0.0.1 "$REDIS_PORT" && echo "redis: up" || echo "redis: down"
        $PROBE amqp 127.0.0.1 "$RABBITMQ_PORT" && echo "rabbitmq: up" || echo "rabbitmq: down"
        $PROBE mongodb 127.0.0.1 "$MONGODB_PORT" && echo "mongodb: up" || echo "mongodb: down"
        ;;
    env) print_env ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
