#!/usr/bin/env bash
# The test command. Installs what the tests drive besides Rust — PyPI's `mcp` (a Python MCP server
# behind the bridge) and Debian's chromium (the landing page) — then runs every test of the
# workspace: unit, integration (real processes and sockets), trybuild UI, fuzz, doc tests.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c "import mcp.server.fastmcp" 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check "mcp>=1.20,<2"
command -v chromium >/dev/null \
  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
exec cargo test --workspace --all-features "$@"
