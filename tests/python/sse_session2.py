"""sse_session.py for the official Python MCP SDK 2.x (PyPI `mcp==2.3.0`, in the virtualenv
`.venv-mcp2` that scripts/test.sh makes): a whole session of its legacy HTTP+SSE client
(protocol revision 2024-11-05's transport, `mcp.client.sse.sse_client`) driven by
`ClientSession` with the `initialize` handshake: open the event stream, initialize, list the
tools, call one, and disconnect. 2.x renamed the result fields to snake_case
(`server_info`, `is_error`, `structured_content`).

Usage: sse_session2.py SSE_URL TOOL ARGS_JSON [BEARER] -> one JSON line on stdout.
"""

import asyncio
import importlib.metadata
import json
import logging
import sys

from mcp import ClientSession
from mcp.client.sse import sse_client


async def main(url: str, tool: str, args: dict, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with sse_client(url, headers=headers, timeout=20, sse_read_timeout=60) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            tools = [t.name for t in (await session.list_tools()).tools]
            result = await session.call_tool(tool, args)
    text = [c.text for c in result.content if getattr(c, "type", "") == "text"]
    print(
        json.dumps(
            {
                "sdk": importlib.metadata.version("mcp"),
                "protocol": init.protocol_version,
                "server": init.server_info.name,
                "tools": tools,
                "is_error": result.is_error,
                "text": text,
                "structured": result.structured_content,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    token = sys.argv[4] if len(sys.argv) > 4 else None
    asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), token), 60))
