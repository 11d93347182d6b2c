#!/usr/bin/env bash
# Drive legacy HTTP+SSE (protocol revision 2024-11-05) with MCP Inspector's CLI
# (@modelcontextprotocol/inspector-cli, pinned in .ci/inspector/package-lock.json), transport
# `sse`: tools/list and a tools/call of gc_content against bioseq served directly, behind
# `mcp-expose bridge` and behind a gateway at /NAME/sse.
#
# usage: .ci/inspector-sse.sh   (after `cargo build --workspace --all-features --bins`)
#
# Installs the CLI with `npm ci` into $REPO/.inspector/ (git-ignored), skipped when that install
# is there for the same package.json + lockfile. Every wait is bounded; servers stop on exit.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SPEC_DIR="$REPO/.ci/inspector"
INSTALL_DIR="$REPO/.inspector"
CLI="$INSTALL_DIR/node_modules/@modelcontextprotocol/inspector-cli/build/index.js"
STAMP="$INSTALL_DIR/.installed"
BIN="$REPO/target/debug"

log() { printf '[inspector] %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

for tool in npm node python3 timeout sha256sum; do
    command -v "$tool" >/dev/null || die "'$tool' is required"
done
[[ -x "$BIN/bioseq" && -x "$BIN/mcp-expose" ]] || die "build the binaries first (cargo build --workspace --all-features --bins)"

want="$(cat "$SPEC_DIR/package.json" "$SPEC_DIR/package-lock.json" | sha256sum | cut -d' ' -f1)"
have=""
[[ -f "$STAMP" ]] && have="$(<"$STAMP")"
if [[ "$have" != "$want" || ! -f "$CLI" ]]; then
    log "installing the Inspector CLI into $INSTALL_DIR (npm ci)"
    mkdir -p "$INSTALL_DIR"
    rm -f "$STAMP"
    cp "$SPEC_DIR/package.json" "$SPEC_DIR/package-lock.json" "$INSTALL_DIR/"
    (cd "$INSTALL_DIR" && timeout 600 npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
    [[ -f "$CLI" ]] || die "installed, but $CLI is missing"
    printf '%s\n' "$want" >"$STAMP"
fi

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# Starts a server (the command after its name) and sets ORIGIN to http://127.0.0.1:PORT.
start() {
    local name="$1" logfile="$WORK/$1.log"
    shift
    "$@" >/dev/null 2>"$logfile" &
    PIDS+=("$!")
    ORIGIN=""
    for _ in $(seq 100); do
        ORIGIN=$(grep -Eo 'http://127\.0\.0\.1:[0-9]+' "$logfile" | head -1 || true)
        [[ -n "$ORIGIN" ]] && return
        sleep 0.1
    done
    cat "$logfile" >&2
    die "$name did not start within 10 s"
}

# Lists the tools and calls gc_content over legacy SSE at $1; fails unless both answer right.
check() {
    local url="$1"
    local tools
    tools=$(timeout 60 node "$CLI" "$url" --transport sse --method tools/list 2>/dev/null) ||
        die "tools/list over $url failed"
    python3 -c 'import json, sys; names = [t["name"] for t in json.load(sys.stdin)["tools"]]; assert "gc_content" in names, names' <<<"$tools" ||
        die "gc_content not listed at $url: $tools"
    local result
    result=$(timeout 60 node "$CLI" "$url" --transport sse --method tools/call --tool-name gc_content --tool-arg seq=GGCCAT 2>/dev/null) ||
        die "tools/call over $url failed"
    python3 -c 'import json, sys; r = json.load(sys.stdin); assert not r.get("isError") and abs(r["structuredContent"]["result"] - 4 / 6) < 1e-4, r' <<<"$result" ||
        die "gc_content(GGCCAT) over $url: $result"
    log "ok: $url (tools/list, tools/call)"
}

start bioseq "$BIN/bioseq" --http 0
check "$ORIGIN/sse"
start bridge "$BIN/mcp-expose" bridge --http 0 -- "$BIN/bioseq"
check "$ORIGIN/sse"
printf '[servers.bio]\ncommand = ["%s"]\n' "$BIN/bioseq" >"$WORK/gateway.toml"
start gateway "$BIN/mcp-expose" gateway "$WORK/gateway.toml" --http 0
check "$ORIGIN/bio/sse"
log "MCP Inspector CLI over legacy SSE: 3 servers passed"
