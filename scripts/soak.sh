#!/usr/bin/env bash
# Soak: the release bioseq server under minutes of tools/call load over HTTP and WebSocket with
# session churn (benches/src/bin/soak.rs), its resident memory sampled every 5 s.
#   SECS=300 WORKERS=8 scripts/soak.sh        -> target/soak/soak.json and a summary on stdout
# Loopback only; the server is stopped (SIGTERM) at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-300}
WORKERS=${WORKERS:-8}
out=target/soak
mkdir -p "$out"
cargo build --release -q -p bioseq -p mcp-expose-benches --bin bioseq --bin soak
log="$out/server.log"
./target/release/bioseq --http 0 --ws 0 2>"$log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q "WebSocket on ws://" "$log" && break
  sleep 0.1
done
http=$(grep -o 'http://127\.0\.0\.1:[0-9]*/mcp' "$log" | head -1)
ws=$(grep -o 'ws://127\.0\.0\.1:[0-9]*/ws' "$log" | head -1)
[ -n "$http" ] && [ -n "$ws" ] || { echo "server did not start:"; cat "$log"; exit 1; }
./target/release/soak --http "$http" --ws "$ws" --pid "$pid" --secs "$SECS" --workers "$WORKERS" --json "$out/soak.json"
python3 - "$out/soak.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
mib = lambda kb: kb / 1024
print(f"soak: {r['secs']} s, {r['workers']} workers (HTTP + WS), {r['calls']:,} calls "
      f"({r['calls_per_s']:,.0f}/s), {r['errors']} errors, {r['sessions_opened']:,} sessions opened")
print(f"rss: start {mib(r['rss_start_kb']):.1f} MiB, after 1 min {mib(r['rss_after_warmup_kb']):.1f} MiB, "
      f"end {mib(r['rss_end_kb']):.1f} MiB, peak {mib(r['rss_peak_kb']):.1f} MiB, "
      f"slope after warm-up {r['rss_slope_kb_per_min']:+.1f} KiB/min")
PY
