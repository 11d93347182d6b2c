# shellcheck shell=bash
# mcp-expose's columns for shared/bench's load matrix. scripts/bench.sh sources this file into a
# copy of shared/bench/run.sh, right after its mcp-expose slot; every function keeps the slot's
# contract: `exec` the server (so the harness measures and stops that PID), serve on
# 127.0.0.1:$1, bridge the stdio child command line $2 where there is one.
#
#   MCP_EXPOSE_BIN   target/release/mcp-expose   (cargo build --release -p mcp-expose --features cli --bin mcp-expose)
#   BENCH_ECHO_BIN   target/release/bench-echo   (cargo build --release -p mcp-expose-benches --bin bench-echo)
#   WS_FLOOR_BIN     target/release/ws-floor     (cargo build --release -p mcp-expose-benches --bin ws-floor)

# The slot itself: the bridge, one child per session (the default), streamable HTTP at /mcp.
gw_mcp_expose() {
  # shellcheck disable=SC2086  # $2 is a command line: split it
  exec "$MCP_EXPOSE_BIN" bridge --http "$1" -- $2
}

# The bridge with one child shared by every session.
gw_mcp_expose_shared() {
  # shellcheck disable=SC2086
  exec "$MCP_EXPOSE_BIN" bridge --child shared --http "$1" -- $2
}

# The bridge over WebSocket (ws://127.0.0.1:PORT/ws), one child per socket.
gw_mcp_expose_ws() {
  # shellcheck disable=SC2086
  exec "$MCP_EXPOSE_BIN" bridge --ws "$1" -- $2
}
gw_scheme_mcp_expose_ws() { echo ws; }
gw_path_mcp_expose_ws() { echo /ws; }

# Native: the same two tools written with #[mcp_expose::tool] (benches/src/bin/bench-echo.rs).
gw_mcp_expose_native() {
  exec "$BENCH_ECHO_BIN" --http "$1"
}
gw_mcp_expose_native_stateless() {
  exec "$BENCH_ECHO_BIN" --http "$1" --stateless
}
gw_mcp_expose_native_ws() {
  exec "$BENCH_ECHO_BIN" --ws "$1"
}
gw_scheme_mcp_expose_native_ws() { echo ws; }
gw_path_mcp_expose_native_ws() { echo /ws; }

# Machine floor over WebSocket: no MCP library, no sessions, one thread, hand-built replies
# (benches/src/bin/ws-floor.rs); any path, ws://127.0.0.1:PORT/ws here.
gw_ws_floor() { exec "$WS_FLOOR_BIN" "$1"; }
gw_scheme_ws_floor() { echo ws; }
gw_path_ws_floor() { echo /ws; }
