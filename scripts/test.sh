#!/usr/bin/env bash
# The test command. Installs what the tests drive besides Rust — PyPI's `mcp` (a Python MCP server
# behind the bridge, the official SDK as a client), Debian's chromium (the landing page) and
# systemd (`systemd-analyze verify` on the printed units) — then runs every test of the
# workspace: unit, integration (real processes and sockets), trybuild UI, fuzz, doc tests.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c "import mcp.server.fastmcp" 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check "mcp>=1.20,<2"
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v systemd-analyze >/dev/null || missing+=(systemd)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
exec cargo test --workspace --all-features "$@"
