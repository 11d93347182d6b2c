"""A stdio MCP server in Python (PyPI `mcp` 1.x, FastMCP) that the bridge tests put on the network.

Tools: echo, pid (the process id, so tests can kill it), slow (sleeps), ask (sampling),
steps (progress notifications before its answer).
"""

import asyncio
import os

from mcp.server.fastmcp import Context, FastMCP
from mcp.types import SamplingMessage, TextContent

mcp = FastMCP("py-child")


@mcp.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@mcp.tool()
def pid() -> int:
    """This server's process id."""
    return os.getpid()


@mcp.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@mcp.tool()
async def steps(count: int, ctx: Context) -> str:
    """Report progress `count` times, then answer."""
    for i in range(count):
        await ctx.report_progress(i + 1, count)
    return f"{count} steps"


@mcp.tool()
async def ask(question: str, ctx: Context) -> str:
    """Ask the client's model (sampling) and return its answer."""
    message = SamplingMessage(role="user", content=TextContent(type="text", text=question))
    result = await ctx.session.create_message(messages=[message], max_tokens=50)
    return f"model said: {result.content.text}"


@mcp.resource("py://greeting")
def greeting() -> str:
    """A static greeting."""
    return "hello from python"


@mcp.prompt()
def review(code: str) -> str:
    """Ask for a code review."""
    return f"Please review: {code}"


if __name__ == "__main__":
    # Tests make restarts fail for a while by creating this file.
    broken = os.environ.get("CHILD_BROKEN_FLAG")
    if broken and os.path.exists(broken):
        raise SystemExit(1)
    mcp.run()
