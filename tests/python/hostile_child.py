"""A stdio MCP server that misbehaves on request, for the bridge's hostile-child tests. Plain
JSON-RPC lines on stdin/stdout (no SDK), so every byte it writes is chosen here.

`initialize` is answered (never, with `--no-init`); `HOSTILE_PIDFILE` names a file to write its
pid to. `tools/call` reads what to do from its arguments, in this order:
  crash: true             exit 1 at once
  stderr_lines: N         write N lines to stderr
  stderr_unterminated: N  write N bytes to stderr with no newline
  stdout_noise: N         write N lines that are not JSON to stdout
  stdout_bytes: N         answer with one line holding N bytes of text (nothing else)
  reply_id: "RAW"         answer with this raw JSON text as the id instead of the request's
Anything else is answered with an empty result.
"""

import json
import os
import sys

out = sys.stdout.buffer


def answer(raw_id, result):
    out.write(b'{"jsonrpc":"2.0","id":' + raw_id.encode() + b',"result":' + json.dumps(result).encode() + b"}\n")
    out.flush()


def call(raw_id, arguments):
    if arguments.get("crash"):
        sys.exit(1)
    lines = arguments.get("stderr_lines", 0)
    if lines:
        sys.stderr.write("".join(f"child stderr line {i}\n" for i in range(lines)))
        sys.stderr.flush()
    unterminated = arguments.get("stderr_unterminated", 0)
    while unterminated > 0:
        chunk = min(unterminated, 1 << 20)
        sys.stderr.write("e" * chunk)
        unterminated -= chunk
    sys.stderr.flush()
    for _ in range(arguments.get("stdout_noise", 0)):
        out.write(b"this is not JSON, but a banner\n")
    big = arguments.get("stdout_bytes", 0)
    if big:
        head = b'{"jsonrpc":"2.0","id":' + raw_id.encode() + b',"result":{"content":[{"type":"text","text":"'
        out.write(head)
        chunk = b"x" * (1 << 20)
        while big > 0:
            out.write(chunk[: min(big, len(chunk))])
            big -= len(chunk)
        out.write(b'"}]}}\n')
        out.flush()
        return
    answer(arguments.get("reply_id", raw_id), {"content": [{"type": "text", "text": "ok"}]})


def main():
    if os.environ.get("HOSTILE_PIDFILE"):
        with open(os.environ["HOSTILE_PIDFILE"], "w") as f:
            f.write(str(os.getpid()))
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        message = json.loads(line)
        if "id" not in message or "method" not in message:
            continue
        raw_id = json.dumps(message["id"])
        method = message["method"]
        if method == "initialize":
            if "--no-init" in sys.argv[1:]:
                continue
            answer(raw_id, {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "hostile", "version": "0"},
            })
        elif method == "tools/call":
            call(raw_id, message["params"].get("arguments", {}))
        else:
            answer(raw_id, {})


main()
