"""A stdio MCP server in Python (PyPI `mcp` 1.x, FastMCP) whose tools ask the client things
during a call, for the bridge's input-required results (MCP 2026-07-28 clients).

Tools: confirm (elicitation; confirmations lists how each ended), ask (sampling), both (elicitation and sampling at once, with
asyncio.gather), roots (roots/list), roots_later (roots/list after its call ended; roots_seen
tells how that went), echo; prompt greet (elicitation).
"""

import asyncio

from mcp.server.fastmcp import Context, FastMCP
from mcp.types import SamplingMessage, TextContent
from pydantic import BaseModel

mcp = FastMCP("py-asking-child")

# What the roots/list sent after roots_later's call ended brought (or why it failed), and
# what each confirm ended with (also when its answer reached no one).
later = {"outcome": "not yet"}
confirmed = []


class Name(BaseModel):
    name: str


@mcp.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@mcp.tool()
async def confirm(question: str, ctx: Context) -> str:
    """Ask the user (elicitation) for a name and return it."""
    try:
        result = await ctx.elicit(message=question, schema=Name)
        if result.action == "accept":
            text = f"hello {result.data.name}"
        else:
            text = f"user chose {result.action}"
    except Exception as e:  # the bridge refused or dropped the request
        text = f"elicitation failed: {e}"
    confirmed.append(text)
    return text


@mcp.tool()
def confirmations() -> str:
    """What every confirm so far ended with, one a line."""
    return "\n".join(confirmed)


async def sample(ctx: Context, question: str) -> str:
    message = SamplingMessage(role="user", content=TextContent(type="text", text=question))
    result = await ctx.session.create_message(messages=[message], max_tokens=50)
    return result.content.text


@mcp.tool()
async def ask(question: str, ctx: Context) -> str:
    """Ask the client's model (sampling) and return its answer."""
    try:
        return f"model said: {await sample(ctx, question)}"
    except Exception as e:
        return f"sampling failed: {e}"


@mcp.tool()
async def both(question: str, ctx: Context) -> str:
    """Ask the user and the model at the same time."""
    elicited, sampled = await asyncio.gather(
        ctx.elicit(message=question, schema=Name), sample(ctx, question)
    )
    return f"user {elicited.data.name if elicited.data else elicited.action}, model {sampled}"


@mcp.tool()
async def roots(ctx: Context) -> str:
    """The client's roots' URIs, comma-separated."""
    result = await ctx.session.list_roots()
    return ",".join(str(root.uri) for root in result.roots)


async def roots_after(ctx: Context) -> None:
    await asyncio.sleep(0.3)
    try:
        result = await asyncio.wait_for(ctx.session.list_roots(), 10)
        later["outcome"] = f"roots {len(result.roots)}"
    except Exception as e:
        later["outcome"] = f"refused: {e}"


@mcp.tool()
async def roots_later(ctx: Context) -> str:
    """Ask roots/list a moment after this call has ended (outside any call)."""
    asyncio.get_running_loop().create_task(roots_after(ctx))
    return "asked later"


@mcp.tool()
def roots_seen() -> str:
    """How the roots/list roots_later sent went."""
    return later["outcome"]


@mcp.prompt()
async def greet(topic: str, ctx: Context) -> str:
    """A greeting about `topic` for the user, whose name it asks (elicitation)."""
    result = await ctx.elicit(message="Your name?", schema=Name)
    return f"Hi {result.data.name}, about {topic}"


if __name__ == "__main__":
    mcp.run()
