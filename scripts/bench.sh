#!/usr/bin/env bash
# Reproduces BENCHMARKS.md: the criterion benches (framing, stdio round trips), the load matrix
# against today's peers (a copy of shared/bench with mcp-expose's columns), stdio load, memory per
# idle WebSocket session, then scripts/bench_report.py writes BENCHMARKS.md from the output.
#
# usage: scripts/bench.sh [all|criterion|build|setup|load|stdio|idle|instructions|replicas|connect|report]   (default: all)
# knobs (env), defaults in brackets (one repetition swings ±30% on the shared 2-core machine: keep 3):
#   CRITERION_ARGS ["--warm-up-time 1 --measurement-time 3"]
#   REPS [3]  DURATION [5]  WARMUP [1]  CONCURRENCY_LIST ["1 32"]  PAYLOAD_LIST ["100 100000"]
#   GATEWAYS [native native_ws mcp_expose mcp_expose_shared mcp_expose_ws mcp_expose_native
#             mcp_expose_native_stateless mcp_expose_native_ws ws_floor supergateway mcp_proxy_ts
#             mcp_proxy_py]   (ws_floor: the machine's WebSocket floor, benches/src/bin/ws-floor.rs)
#   IDLE_SESSIONS [1000]  SHARED_BENCH [../shared/bench]  WORK [target/peer-bench]
#   INSTR_SMALL [200]  INSTR_LARGE [1200]  INSTR_SERVERS [native mcp_expose_native native_ws mcp_expose_native_ws]
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
export GATEWAYS=${GATEWAYS:-"native native_ws mcp_expose mcp_expose_shared mcp_expose_ws mcp_expose_native mcp_expose_native_stateless mcp_expose_native_ws ws_floor supergateway mcp_proxy_ts mcp_proxy_py"}
IDLE_SESSIONS=${IDLE_SESSIONS:-1000}
export MCP_EXPOSE_BIN=$ROOT/target/release/mcp-expose
export BENCH_ECHO_BIN=$ROOT/target/release/bench-echo
export WS_FLOOR_BIN=$ROOT/target/release/ws-floor
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
  # what else the machine ran: the report prints it next to the figures
  cut -d' ' -f1-3 /proc/loadavg >"$OUT/load/loadavg.start"
  RAW_DIR=$OUT/load bash "$WORK/run-mcpx.sh" matrix
  cut -d' ' -f1-3 /proc/loadavg >"$OUT/load/loadavg.end"
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

# Instructions per tools/call round trip (callgrind): deterministic, whatever else the shared
# machine is doing. Each server runs under `valgrind --tool=callgrind`, driven at c=1 with 100 B
# payloads for INSTR_SMALL then INSTR_LARGE requests (a fresh process each); the difference of the
# two totals over the difference of the requests answered cancels start-up and session set-up.
INSTR_SMALL=${INSTR_SMALL:-200}
INSTR_LARGE=${INSTR_LARGE:-1200}
INSTR_SERVERS=${INSTR_SERVERS:-"native mcp_expose_native native_ws mcp_expose_native_ws"}
NATIVE_BIN=$WORK/child/target/release/bench-native

# instr_run NAME N: one server under callgrind, N requests at c=1; sets INSTR="IR REQUESTS_OK ERRORS"
# (IR "null" when callgrind wrote no total).
instr_run() {
  local name=$1 n=$2 dir=$OUT/instructions port url tag ir ok=0 err=0
  port=$(free_port 18950)
  tag=$dir/$name.n$n
  case $name in
    native | mcp_expose_native) url=http://127.0.0.1:$port/mcp ;;
    native_ws | mcp_expose_native_ws) url=ws://127.0.0.1:$port/ws ;;
  esac
  rm -f "$tag.callgrind.out" "$tag.run.json"
  set -- valgrind --tool=callgrind --callgrind-out-file="$tag.callgrind.out"
  case $name in
    native) "$@" "$NATIVE_BIN" "$port" >"$tag.log" 2>&1 </dev/null & ;;
    mcp_expose_native) "$@" "$BENCH_ECHO_BIN" --http "$port" >"$tag.log" 2>&1 </dev/null & ;;
    native_ws) "$@" "$NATIVE_WS_BIN" "$port" >"$tag.log" 2>&1 </dev/null & ;;
    mcp_expose_native_ws) "$@" "$BENCH_ECHO_BIN" --ws "$port" >"$tag.log" 2>&1 </dev/null & ;;
  esac
  SERVER_PID=$!
  # up to 60 s for the listener (start-up under valgrind is slow)
  for _ in $(seq 600); do
    ss -Htln "sport = :$port" | grep -q . && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if ss -Htln "sport = :$port" | grep -q .; then
    "$LOAD_BIN" run --url "$url" --concurrency 1 --payload 100 --duration 600 --warmup 0 \
      --max-requests "$n" --label "$name" --json "$tag.run.json" >/dev/null 2>>"$tag.log" ||
      echo "  instructions $name n=$n: load failed (see $tag.log)" >&2
  else
    echo "  instructions $name n=$n: no listener on port $port (see $tag.log)" >&2
  fi
  # SIGINT: graceful shutdown, after which callgrind writes its totals; up to 30 s, then TERM/KILL
  kill -INT "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  stop_server
  ir=$(sed -n 's/^summary: *\([0-9][0-9]*\).*/\1/p' "$tag.callgrind.out" 2>/dev/null || true)
  if [ -f "$tag.run.json" ]; then
    read -r ok err < <(python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))
print(r.get("requests_ok") or 0, (r.get("errors_total") or 0) + (1 if "error" in r else 0))' "$tag.run.json") || true
  fi
  INSTR="${ir:-null} ${ok:-0} ${err:-0}"
}

instructions() {
  log "instructions per tools/call (callgrind): [$INSTR_SERVERS] n=$INSTR_SMALL and n=$INSTR_LARGE, c=1, 100 B"
  rm -rf "$OUT/instructions"
  mkdir -p "$OUT/instructions"
  local name small large
  for name in $INSTR_SERVERS; do
    case $name in
      native | mcp_expose_native | native_ws | mcp_expose_native_ws) ;;
      *) echo "  instructions: unknown server $name, skipped" >&2; continue ;;
    esac
    instr_run "$name" "$INSTR_SMALL"; small=$INSTR
    instr_run "$name" "$INSTR_LARGE"; large=$INSTR
    # shellcheck disable=SC2086  # "IR OK ERRORS" each: split
    python3 - "$OUT/instructions/$name.json" "$name" $small $large <<'PY'
import json, sys
out, name, ir_s, ok_s, err_s, ir_l, ok_l, err_l = sys.argv[1:]
ir_s, ir_l = (None if x == "null" else int(x) for x in (ir_s, ir_l))
ok_s, ok_l, errors = int(ok_s), int(ok_l), int(err_s) + int(err_l)
per = (ir_l - ir_s) / (ok_l - ok_s) if ir_s and ir_l and ok_l > ok_s and not errors else None
r = {"name": name, "ir_small": ir_s, "ir_large": ir_l, "requests_small": ok_s,
     "requests_large": ok_l, "ir_per_request": per, "errors": errors,
     "concurrency": 1, "payload_bytes": 100}
with open(out, "w") as f:
    json.dump(r, f, indent=2)
print(f"  {name}: {per:,.0f} instructions per request" if per else f"  {name}: not measured", file=sys.stderr)
PY
  done
}

# Replicas (issue 18): bench-echo alone in memory, alone on Redis, and three replicas on Redis
# behind nginx round-robin (scripts/replicas.sh); mcp-load at c=32 with 100 B `tools/call echo`
# over 2025 sessions, REPS runs each, interleaved; Redis commands per request from Redis's own
# `total_commands_processed`. Then the same for MCP 2026-07-28 requests (sessionless), on the
# same server: load-2026 (benches/src/bin/load-2026.rs) at c=32 with 100 B, the same durations.
replicas() {
  log "replicas: memory vs Redis vs 3 replicas on Redis behind nginx (c=32, 100 B, 2025-06-18 sessions then 2026-07-28 sessionless, $REPS reps)"
  local dir=$OUT/replicas load26=$ROOT/target/release/load-2026
  rm -rf "$dir"
  mkdir -p "$dir"
  if [ ! -x "$LOAD_BIN" ]; then
    mkdir -p "$WORK"
    cp -rTu "$SHARED_BENCH/load" "$WORK/load"
    chmod -R u+w "$WORK/load"
    grep -q '^\[workspace\]' "$WORK/load/Cargo.toml" || printf '\n[workspace]\n' >>"$WORK/load/Cargo.toml"
    cargo build --release --manifest-path "$WORK/load/Cargo.toml"
  fi
  cargo build --release -p mcp-expose-benches --bin bench-echo
  cargo build --release -p mcp-expose-benches --bin load-2026
  local redis_port
  redis_port=$(free_port 16379)
  redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no >"$dir/redis.log" 2>&1 &
  local redis_pid=$!
  commands() { redis-cli -p "$1" info stats | awk -F: '/^total_commands_processed/ {print $2 + 0}'; }
  for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  local rep setup port rig_redis before after
  for rep in $(seq "$REPS"); do
    for setup in memory redis nginx3; do
      port=$(free_port 18500)
      rig_redis=$redis_port
      case $setup in
        memory) "$BENCH_ECHO_BIN" --http "$port" 2>"$dir/$setup.$rep.log" & ;;
        redis) MCP_EXPOSE_STATE="redis://127.0.0.1:$redis_port/0" "$BENCH_ECHO_BIN" --http "$port" 2>"$dir/$setup.$rep.log" & ;;
        nginx3) "$ROOT/scripts/replicas.sh" "$BENCH_ECHO_BIN" "$port" 2>"$dir/$setup.$rep.log" & ;;
      esac
      SERVER_PID=$!
      for _ in $(seq 200); do curl -sf --max-time 1 "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
      if [ "$setup" = nginx3 ]; then
        for _ in $(seq 100); do grep -q "Redis on" "$dir/$setup.$rep.log" && break; sleep 0.1; done
        rig_redis=$(grep -o 'Redis on 127.0.0.1:[0-9]*' "$dir/$setup.$rep.log" | cut -d: -f2)
      fi
      before=$(commands "$rig_redis")
      "$LOAD_BIN" run --url "http://127.0.0.1:$port/mcp" --concurrency 32 --payload 100 \
        --duration "$DURATION" --warmup "$WARMUP" --label "$setup" --json "$dir/$setup.$rep.json" >/dev/null
      after=$(commands "$rig_redis")
      echo "{\"commands\": $((after - before))}" >"$dir/$setup.$rep.redis.json"
      # 2026-07-28: no session, so nothing in Redis but what the replicas do anyway.
      before=$(commands "$rig_redis")
      "$load26" --url "http://127.0.0.1:$port/mcp" --concurrency 32 --payload 100 \
        --duration "$DURATION" --warmup "$WARMUP" --label "$setup" --json "$dir/$setup.$rep.2026.json" \
        || log "load-2026 against $setup failed: no 2026-07-28 figures for this run"
      after=$(commands "$rig_redis")
      echo "{\"commands\": $((after - before))}" >"$dir/$setup.$rep.redis2026.json"
      stop_server
    done
  done
  kill -TERM "$redis_pid" 2>/dev/null || true
  wait "$redis_pid" 2>/dev/null || true
  python3 "$ROOT/scripts/bench_report.py" --replicas-only "$dir" --out "$ROOT/BENCHMARKS.md"
}

report() {
  log "report: BENCHMARKS.md"
  python3 "$ROOT/scripts/bench_report.py" \
    --criterion "$ROOT/target/criterion" --batches "$ROOT/target/tmp/framing-batches.json" \
    --load "$OUT/load" --stdio "$OUT/stdio" --idle "$OUT/idle" --instructions "$OUT/instructions" \
    --replicas "$OUT/replicas" \
    --knobs "REPS=$REPS DURATION=$DURATION WARMUP=$WARMUP CONCURRENCY_LIST=\"$CONCURRENCY_LIST\" PAYLOAD_LIST=\"$PAYLOAD_LIST\" CRITERION_ARGS=\"$CRITERION_ARGS\" IDLE_SESSIONS=$IDLE_SESSIONS INSTR_SMALL=$INSTR_SMALL INSTR_LARGE=$INSTR_LARGE" \
    --gateways "$GATEWAYS" --out "$ROOT/BENCHMARKS.md"
}

# The connector's CPU per call by the revision it speaks (benches/src/bin/connect-cost.rs): in
# front of bench-echo over HTTP, sequential calls, 2025-11-25 (as sent) then 2026-07-28 (each
# request rewritten) in every repetition. Not part of `all` (nor of BENCHMARKS.md): its JSON
# lines go to $OUT/connect/.
connect() {
  log "connect: the connector's CPU per call, 2025-11-25 as sent vs 2026-07-28 translated ($REPS reps of ${CONNECT_CALLS:-10000} calls)"
  local dir=$OUT/connect port rep
  rm -rf "$dir"
  mkdir -p "$dir"
  cargo build --release -p mcp-expose --features cli --bin mcp-expose
  cargo build --release -p mcp-expose-benches --bin bench-echo --bin connect-cost
  port=$(free_port 18700)
  "$BENCH_ECHO_BIN" --http "$port" 2>"$dir/server.log" &
  SERVER_PID=$!
  for _ in $(seq 200); do curl -sf --max-time 1 "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
  for rep in $(seq "$REPS"); do
    "$ROOT/target/release/connect-cost" "$MCP_EXPOSE_BIN" "http://127.0.0.1:$port/mcp" \
      "${CONNECT_CALLS:-10000}" 2025-11-25 2026-07-28 | tee "$dir/rep$rep.json"
  done
  kill "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
}

case "${1:-all}" in
  criterion) criterion ;;
  build) build ;;
  setup) setup ;;
  load) load ;;
  stdio) stdio ;;
  idle) idle ;;
  instructions) instructions ;;
  report) report ;;
  replicas) replicas ;;
  connect) connect ;;
  all) build; setup; criterion; load; stdio; idle; instructions; replicas; report ;;
  *) echo "usage: $0 [all|criterion|build|setup|load|stdio|idle|instructions|replicas|connect|report]" >&2; exit 2 ;;
esac
