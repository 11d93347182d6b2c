#!/usr/bin/env bash
# Three replicas of a server behind nginx, sharing a Redis (issue 18), all on 127.0.0.1, for
# the conformance suite and the load bench: runs until it gets SIGTERM or SIGINT, then stops
# everything it started.
#
# usage: scripts/replicas.sh SERVER_BINARY PORT [REPLICAS]
#
# Starts redis-server (its own free port, nothing saved), REPLICAS (default 3) copies of
# `SERVER_BINARY --http P --state redis://.. --state-key-file KEY` (one shared signing key for
# input-required results), and nginx on PORT with `SERVER_BINARY --print-nginx-config`, each
# with its own temp directory. Every wait is bounded; a part that does not come up stops the
# whole with a message saying which.
set -euo pipefail
SERVER=${1:?usage: $0 SERVER_BINARY PORT [REPLICAS]}
PORT=${2:?usage: $0 SERVER_BINARY PORT [REPLICAS]}
COUNT=${3:-3}
for tool in redis-server nginx curl python3; do
    command -v "$tool" >/dev/null || { echo "replicas: $tool is missing (apt-get install redis-server nginx-light curl)" >&2; exit 1; }
done
DIR=$(mktemp -d "${TMPDIR:-/tmp}/mcp-replicas.XXXXXX")
PIDS=()
stop() { # SIGTERM to nginx and the replicas, then Redis; SIGKILL to what is left after 3 s
    local redis=${PIDS[0]:-}
    for pid in "${PIDS[@]:1}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 30); do
        alive=0
        for pid in "${PIDS[@]:1}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    [ -n "$redis" ] && wait "$redis" 2>/dev/null
    rm -rf "$DIR"
}
trap stop EXIT
trap 'exit 0' TERM INT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
wait_for() { # wait_for WHAT COMMAND..: 20 s at most
    local what=$1; shift
    for _ in $(seq 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "replicas: $what did not come up within 20 s (logs in $DIR)" >&2
    exit 1
}

REDIS_PORT=$(free_port)
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no >"$DIR/redis.log" 2>&1 &
PIDS+=($!)
wait_for "redis-server" bash -c "exec 3<>/dev/tcp/127.0.0.1/$REDIS_PORT && printf 'PING\r\n' >&3 && head -c 7 <&3 | grep -q PONG"

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/state.key"
REPLICAS=()
for i in $(seq "$COUNT"); do
    port=$(free_port)
    MCP_EXPOSE_STATE="redis://127.0.0.1:$REDIS_PORT/0" MCP_EXPOSE_STATE_KEY_FILE="$DIR/state.key" \
        "$SERVER" --http "$port" >"$DIR/replica-$i.log" 2>&1 &
    PIDS+=($!)
    REPLICAS+=("127.0.0.1:$port")
done
for replica in "${REPLICAS[@]}"; do
    wait_for "the replica at $replica" curl -sf --max-time 1 "http://$replica/health"
done

mkdir -p "$DIR/nginx"
"$SERVER" --print-nginx-config --state "redis://127.0.0.1:$REDIS_PORT/0" --replicas "$(IFS=,; echo "${REPLICAS[*]}")" --nginx-listen "127.0.0.1:$PORT" >"$DIR/nginx/mcp.conf"
cat >"$DIR/nginx/nginx.conf" <<CONF
worker_processes 1;
error_log $DIR/nginx/error.log warn;
pid $DIR/nginx/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $DIR/nginx/body;
    proxy_temp_path $DIR/nginx/proxy;
    fastcgi_temp_path $DIR/nginx/fastcgi;
    uwsgi_temp_path $DIR/nginx/uwsgi;
    scgi_temp_path $DIR/nginx/scgi;
    include $DIR/nginx/mcp.conf;
}
CONF
nginx -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf" -g 'daemon off;' >"$DIR/nginx/stdout.log" 2>&1 &
PIDS+=($!)
wait_for "nginx on 127.0.0.1:$PORT" curl -sf --max-time 1 "http://127.0.0.1:$PORT/health"
echo "replicas: nginx on http://127.0.0.1:$PORT/mcp in front of ${REPLICAS[*]}, Redis on 127.0.0.1:$REDIS_PORT" >&2
wait
