"""A whole session of the official Python MCP SDK's legacy HTTP+SSE client (protocol revision
2024-11-05, `mcp.client.sse.sse_client`): open the event stream, initialize, list the tools,
call one, and disconnect.

Usage: sse_session.py SSE_URL TOOL ARGS_JSON [BEARER] -> one JSON line on stdout.
"""

import asyncio
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
                "server": init.serverInfo.name,
                "tools": tools,
                "is_error": result.isError,
                "text": text,
                "structured": result.structuredContent,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    token = sys.argv[4] if len(sys.argv) > 4 else None
    asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), token), 60))
