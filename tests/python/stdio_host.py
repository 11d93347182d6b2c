"""A desktop host on the official Python MCP SDK 1.x (MCP 2025-11-25, no 2026-07-28): it starts
a stdio server (here `mcp-expose connect URL ...`), initializes, lists the tools, and calls one.
It answers the server's sampling requests with "from the host", elicitation with accept and
{"confirmed": true}, and roots with file:///srv/data. Prints one JSON line on stdout:
{"protocol", "tools", "is_error", "text", "asked"} where `asked` lists the requests it answered.

Usage: stdio_host.py TOOL ARGS_JSON COMMAND [ARG...]
"""

import asyncio
import json
import logging
import sys

import mcp.types as types
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

asked: list[str] = []


async def sampling(context, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    asked.append("sampling/createMessage")
    return types.CreateMessageResult(
        role="assistant", model="host-model", content=types.TextContent(type="text", text="from the host")
    )


async def elicitation(context, params) -> types.ElicitResult:
    asked.append("elicitation/create")
    return types.ElicitResult(action="accept", content={"confirmed": True})


async def roots(context) -> types.ListRootsResult:
    asked.append("roots/list")
    return types.ListRootsResult(roots=[types.Root(uri="file:///srv/data", name="data")])


async def main(tool: str, args: dict, command: list[str]) -> None:
    server = StdioServerParameters(command=command[0], args=command[1:])
    async with stdio_client(server) as (read, write):
        async with ClientSession(
            read, write, sampling_callback=sampling, elicitation_callback=elicitation, list_roots_callback=roots
        ) as session:
            init = await session.initialize()
            tools = [t.name for t in (await session.list_tools()).tools]
            result = await session.call_tool(tool, args)
    text = [c.text for c in result.content if getattr(c, "type", "") == "text"]
    print(
        json.dumps(
            {"protocol": init.protocolVersion, "tools": tools, "is_error": result.isError, "text": text, "asked": asked}
        ),
        flush=True,
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(asyncio.wait_for(main(sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]), 60))
