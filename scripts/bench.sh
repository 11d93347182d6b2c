#!/usr/bin/env bash
# Reproduces BENCHMARKS.md: the criterion benches (framing, stdio round trips), the load matrix
# against today's peers (a copy of shared/bench with mcp-expose's columns), stdio load, memory per
# idle WebSocket session, then scripts/bench_report.py writes BENCHMARKS.md from the output.
#
# usage: scripts/bench.sh [all|criterion|build|setup|load|stdio|idle|report]   (default: all)
# knobs (env), defaults in brackets (one repetition swings ±30% on the shared 2-core machine: keep 3):
#   CRITERION_ARGS ["--warm-up-time 1 --measurement-time 3"]
#   REPS [3]  DURATION [5]  WARMUP [1]  CONCURRENCY_LIST ["1 32"]  PAYLOAD_LIST ["100 100000"]
#   GATEWAYS [native native_ws mcp_expose mcp_expose_shared mcp_expose_ws mcp_expose_native
#             mcp_expose_native_stateless mcp_expose_native_ws supergateway mcp_proxy_ts mcp_proxy_py]
#   IDLE_SESSIONS [1000]  SHARED_BENCH [../shared/bench]  WORK [target/peer-bench]
#   OUT [target/bench-results]
#
# Everything binds 127.0.0.1 and talks over loopback only; every load run is bounded (mcp-load
# caps time and count, ws-idle caps sessions and time); every server started here is stopped by
# its PID.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SHARED_BENCH=${SHARED_BENCH:-$ROOT/../shared/bench}
WORK=${WORK:-$ROOT/target/peer-bench}
OUT=${OUT:-$ROOT/target/bench-results}
CRITERION_ARGS=${CRITERION_ARGS:-"--warm-up-time 1 --measurement-time 3"}
export REPS=${REPS:-3} DURATION=${DURATION:-5} WARMUP=${WARMUP:-1}
export CONCURRENCY_LIST=${CONCURRENCY_LIST:-"1 32"} PAYLOAD_LIST=${PAYLOAD_LIST:-"100 100000"}
export GATEWAYS=${GATEWAYS:-"native native_ws mcp_expose mcp_expose_shared mcp_expose_ws mcp_expose_native mcp_expose_native_stateless mcp_expose_native_ws supergateway mcp_proxy_ts mcp_proxy_py"}
IDLE_SESSIONS=${IDLE_SESSIONS:-1000}
export MCP_EXPOSE_BIN=$ROOT/target/release/mcp-expose
export BENCH_ECHO_BIN=$ROOT/target/release/bench-echo
WS_IDLE_BIN=$ROOT/target/release/ws-idle
LOAD_BIN=$WORK/load/target/release/mcp-load
CHILD_BIN=$WORK/child/target/release/bench-child
NATIVE_WS_BIN=$WORK/child/target/release/bench-native-ws
PROCSTAT="python3 $WORK/tools/procstat.py"

log() { printf '== %s\n' "$*" >&2; }

criterion() {
  log "criterion: framing, stdio_roundtrip ($CRITERION_ARGS)"
  # shellcheck disable=SC2086  # CRITERION_ARGS is a list of flags
  cargo bench -p mcp-expose-benches --bench framing -- $CRITERION_ARGS
  # shellcheck disable=SC2086
  cargo bench -p mcp-expose-benches --bench stdio_roundtrip -- $CRITERION_ARGS
}

build() {
  log "release builds: the mcp-expose binary (bridge) and the bench-only servers"
  cargo build --release -p mcp-expose --features cli --bin mcp-expose
  cargo build --release -p mcp-expose-benches --bins
}

# A writable copy of shared/bench (read-only for us) whose run.sh sources our gateway functions
# right after its mcp-expose slot. Build outputs, node_modules and .venv stay in the copy.
setup() {
  log "harness: $SHARED_BENCH -> $WORK"
  mkdir -p "$WORK"
  cp -rTu "$SHARED_BENCH" "$WORK"
  local m
  for m in child load; do
    chmod u+w "$WORK/$m" "$WORK/$m/Cargo.toml"
    # the copy lives under this workspace's target/: keep cargo from adopting it
    grep -q '^\[workspace\]' "$WORK/$m/Cargo.toml" || printf '\n[workspace]\n' >>"$WORK/$m/Cargo.toml"
  done
  chmod u+w "$WORK" "$WORK/results"
  sed "/^# <<<<.* mcp-expose slot <<<</a source \"$ROOT/scripts/bench-gateways.sh\"" \
    "$WORK/run.sh" >"$WORK/run-mcpx.sh"
  grep -q 'bench-gateways.sh' "$WORK/run-mcpx.sh" || { echo "slot marker not found in run.sh" >&2; exit 1; }
  bash "$WORK/run-mcpx.sh" setup
}

load() {
  log "load matrix: [$GATEWAYS] c=[$CONCURRENCY_LIST] p=[$PAYLOAD_LIST] reps=$REPS ${WARMUP}s+${DURATION}s"
  rm -rf "$OUT/load"
  mkdir -p "$OUT/load"
  RAW_DIR=$OUT/load bash "$WORK/run-mcpx.sh" matrix
  RAW_DIR=$OUT/load bash "$WORK/run-mcpx.sh" summary || true
}

# stdio: no gateway; mcp-load spawns one server per worker: rmcp's bench-child, bench-echo
# (mcp-expose `serve()`), and bench-echo over rmcp's non-blocking pipes (a proposed change).
stdio() {
  log "stdio: bench-child (rmcp) vs bench-echo (mcp-expose serve(), and over non-blocking pipes)"
  rm -rf "$OUT/stdio"
  mkdir -p "$OUT/stdio"
  local rep c p name cmd tag
  for rep in $(seq "$REPS"); do
    for c in $CONCURRENCY_LIST; do
      for p in $PAYLOAD_LIST; do
        for name in rmcp mcp_expose mcp_expose_pipes; do
          case $name in
            rmcp) cmd=$CHILD_BIN ;;
            mcp_expose) cmd=$BENCH_ECHO_BIN ;;
            mcp_expose_pipes) cmd="$BENCH_ECHO_BIN --stdio-pipes" ;;
          esac
          tag=$OUT/stdio/${name}__c${c}__p${p}__r${rep}
          "$LOAD_BIN" probe --stdio-cmd "$cmd" --timeout-s 30 --json "$tag.probe.json" >/dev/null 2>>"$tag.log" || true
          "$LOAD_BIN" run --stdio-cmd "$cmd" --concurrency "$c" --payload "$p" \
            --duration "$DURATION" --warmup "$WARMUP" --label "$name" --json "$tag.run.json" \
            >/dev/null 2>>"$tag.log" || echo "  stdio $name c=$c p=$p failed (see $tag.log)" >&2
        done
      done
    done
  done
}

SERVER_PID=""
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
trap stop_server EXIT

free_port() {
  local port=$1
  while ss -Htan "sport = :$port" | grep -q .; do port=$((port + 1)); done
  echo "$port"
}

# Memory: idle RSS after one session, then per idle WebSocket session (ws-idle).
idle() {
  log "idle WebSocket sessions: $IDLE_SESSIONS each, mcp-expose vs rmcp over axum ws"
  rm -rf "$OUT/idle"
  mkdir -p "$OUT/idle"
  local name port url
  for name in mcp_expose_native_ws native_ws; do
    port=$(free_port 18900)
    url=ws://127.0.0.1:$port/ws
    case $name in
      mcp_expose_native_ws) "$BENCH_ECHO_BIN" --ws "$port" >"$OUT/idle/$name.log" 2>&1 </dev/null & ;;
      native_ws) "$NATIVE_WS_BIN" "$port" >"$OUT/idle/$name.log" 2>&1 </dev/null & ;;
    esac
    SERVER_PID=$!
    if "$LOAD_BIN" probe --url "$url" --timeout-s 30 --json "$OUT/idle/$name.probe.json" >/dev/null 2>>"$OUT/idle/$name.log"; then
      $PROCSTAT "$SERVER_PID" >"$OUT/idle/$name.stat0.json"
      "$WS_IDLE_BIN" --url "$url" --pid "$SERVER_PID" --sessions "$IDLE_SESSIONS" \
        --json "$OUT/idle/$name.idle.json" 2>>"$OUT/idle/$name.log" || echo "  idle $name failed" >&2
    else
      echo "  idle $name: probe failed (see $OUT/idle/$name.log)" >&2
    fi
    stop_server
  done
}

report() {
  log "report: BENCHMARKS.md"
  python3 "$ROOT/scripts/bench_report.py" \
    --criterion "$ROOT/target/criterion" --batches "$ROOT/target/tmp/framing-batches.json" \
    --load "$OUT/load" --stdio "$OUT/stdio" --idle "$OUT/idle" \
    --knobs "REPS=$REPS DURATION=$DURATION WARMUP=$WARMUP CONCURRENCY_LIST=\"$CONCURRENCY_LIST\" PAYLOAD_LIST=\"$PAYLOAD_LIST\" CRITERION_ARGS=\"$CRITERION_ARGS\" IDLE_SESSIONS=$IDLE_SESSIONS" \
    --gateways "$GATEWAYS" --out "$ROOT/BENCHMARKS.md"
}

case "${1:-all}" in
  criterion) criterion ;;
  build) build ;;
  setup) setup ;;
  load) load ;;
  stdio) stdio ;;
  idle) idle ;;
  report) report ;;
  all) build; setup; criterion; load; stdio; idle; report ;;
  *) echo "usage: $0 [all|criterion|build|setup|load|stdio|idle|report]" >&2; exit 2 ;;
esac
