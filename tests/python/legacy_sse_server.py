"""A server that speaks only the HTTP+SSE transport of MCP 2024-11-05 (the official Python SDK
1.x's FastMCP with transport="sse"): GET /sse streams, POST /messages/ takes messages; POST
/sse is refused. Tools: echo, and ask (sampling, through the client).

Usage: legacy_sse_server.py PORT  (binds 127.0.0.1)
"""

import sys

from mcp.server.fastmcp import Context, FastMCP
from mcp.types import SamplingMessage, TextContent

mcp = FastMCP("legacy-sse", host="127.0.0.1", port=int(sys.argv[1]))


@mcp.tool()
def echo(text: str) -> str:
    """Return the text."""
    return text


@mcp.tool()
async def ask(question: str, ctx: Context) -> str:
    """Ask the client's model (sampling) and return its answer."""
    result = await ctx.session.create_message(
        messages=[SamplingMessage(role="user", content=TextContent(type="text", text=question))], max_tokens=50
    )
    return result.content.text if result.content.type == "text" else "(not text)"


if __name__ == "__main__":
    mcp.run(transport="sse")
