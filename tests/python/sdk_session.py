"""A whole session of the official Python MCP SDK's streamable HTTP client: initialize, list
the tools, call one, and disconnect (the SDK ends the session with DELETE). Whatever the SDK
logs (it warns "Session termination failed: <status>" when it dislikes the DELETE's answer)
goes to stderr.

Usage: sdk_session.py SERVER_URL TOOL ARGS_JSON [BEARER] -> one JSON line on stdout.
"""

import asyncio
import json
import logging
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client


async def main(url: str, tool: str, args: dict, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with streamablehttp_client(url, headers=headers, timeout=20) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = [t.name for t in (await session.list_tools()).tools]
            result = await session.call_tool(tool, args)
    text = [c.text for c in result.content if getattr(c, "type", "") == "text"]
    print(json.dumps({"tools": tools, "is_error": result.isError, "text": text}), flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    token = sys.argv[4] if len(sys.argv) > 4 else None
    asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), token), 60))
