#!/usr/bin/env bash
# The test command. Installs what the tests drive besides Rust — PyPI's `mcp` (a Python MCP server
# behind the bridge, the official SDK 1.x as a client; the SDK 2.x in the virtualenv .venv-mcp2),
# Debian's chromium (the landing page), systemd (`systemd-analyze verify` on the printed
# units), redis-server and nginx (state shared by replicas and the load balancer in front of
# them; the tests start their own on free loopback ports) — then runs every test of the
# workspace: unit, integration (real processes and sockets), trybuild UI, fuzz, doc tests.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c "import mcp.server.fastmcp" 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check "mcp>=1.20,<2"
# The official SDK 2.x (tests/tests/python_sdk2.rs) lives in its own virtualenv, beside the
# global 1.x that the other tests drive.
if ! .venv-mcp2/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('mcp') != '2.3.0')" 2>/dev/null; then
  timeout 120 python3 -m venv .venv-mcp2
  timeout 300 .venv-mcp2/bin/python -m pip install --quiet --disable-pip-version-check "mcp==2.3.0"
fi
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
exec cargo test --workspace --all-features "$@"
