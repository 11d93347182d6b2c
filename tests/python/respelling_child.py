"""A raw stdio MCP server that answers every request with its id spelled another legal way:
each character of a string id escaped as `\\uXXXX` (alternating upper- and lower-case hex), an
integer id as `N.0`. A bridge that matches ids by their text never finds the caller.
"""

import json
import sys


def respell(raw_id):
    if isinstance(raw_id, str):
        out = []
        for i, ch in enumerate(raw_id):
            code = f"{ord(ch):04x}"
            out.append("\\u" + (code.upper() if i % 2 else code))
        return '"' + "".join(out) + '"'
    if isinstance(raw_id, int):
        return f"{raw_id}.0"
    return json.dumps(raw_id)


def answer(request_id, result):
    body = json.dumps({"jsonrpc": "2.0", "result": result})
    sys.stdout.write('{"id":' + respell(request_id) + "," + body[1:] + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    try:
        message = json.loads(line)
    except ValueError:
        continue
    if "id" not in message or "method" not in message:
        continue
    method = message["method"]
    if method == "initialize":
        answer(message["id"], {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "respelling", "version": "0"},
        })
    elif method == "tools/call":
        text = message["params"]["arguments"]["text"]
        answer(message["id"], {"content": [{"type": "text", "text": text}]})
    else:
        answer(message["id"], {})
