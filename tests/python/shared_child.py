"""A stdio MCP server (PyPI `mcp` 1.x, FastMCP) for the shared-child isolation tests.

Tools: echo, slow (sleeps), whisper (logs its text, then sleeps), ask_later (sleeps, then
asks the client's model), ask_if_able (asks only when the client declared sampling), flood (many long progress
notifications), touch (tells subscribers a resource changed); resources/subscribe accepted.
"""

import asyncio

from pydantic import AnyUrl

from mcp.server.fastmcp import Context, FastMCP
from mcp.types import ClientCapabilities, SamplingCapability, SamplingMessage, TextContent

mcp = FastMCP("shared-child")


@mcp.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@mcp.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@mcp.tool()
async def whisper(text: str, seconds: float, ctx: Context) -> str:
    """Log `text` (a notification), then sleep."""
    await ctx.info(text)
    await asyncio.sleep(seconds)
    return "whispered"


async def sample(ctx: Context, question: str) -> str:
    message = SamplingMessage(role="user", content=TextContent(type="text", text=question))
    result = await ctx.session.create_message(messages=[message], max_tokens=50)
    return f"model said: {result.content.text}"


@mcp.tool()
async def ask_later(question: str, delay: float, ctx: Context) -> str:
    """Sleep, then ask the client's model (sampling)."""
    await asyncio.sleep(delay)
    return await sample(ctx, question)


@mcp.tool()
async def ask_if_able(question: str, ctx: Context) -> str:
    """Ask the client's model when the client declared sampling."""
    if not ctx.session.check_client_capability(ClientCapabilities(sampling=SamplingCapability())):
        return "no sampling"
    return await sample(ctx, question)


@mcp.tool()
async def flood(count: int, size: int, ctx: Context) -> str:
    """Report progress `count` times, each with a message of `size` bytes, then answer."""
    message = "x" * size
    for i in range(count):
        await ctx.report_progress(i + 1, count, message)
    return "flooded"


@mcp._mcp_server.subscribe_resource()
async def subscribe(uri: AnyUrl) -> None:
    pass


@mcp._mcp_server.unsubscribe_resource()
async def unsubscribe(uri: AnyUrl) -> None:
    pass


@mcp.tool()
async def touch(uri: str, ctx: Context) -> str:
    """Notify that the resource `uri` changed."""
    await ctx.session.send_resource_updated(AnyUrl(uri))
    return "touched"


if __name__ == "__main__":
    mcp.run()
