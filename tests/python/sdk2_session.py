"""A session of the official Python MCP SDK 2.x (`mcp.Client`, PyPI `mcp==2.3.0`) that calls
one tool needing the client's sampling or elicitation, with both callbacks installed.

In MODE `auto` (the SDK's default) the client probes `server/discover` and speaks 2026-07-28
when the server does: a tool that needs input answers with an input-required result, which the
SDK fulfils through the callbacks and retries. In MODE `legacy` the client does the
`initialize` handshake at 2025-11-25: the server asks by real server-to-client requests
(`sampling/createMessage`, `elicitation/create`), which the SDK answers through the same
callbacks.

Every JSON-RPC message the client sends or receives passes through a tap around the SDK's
transport, so the line printed tells what went over the wire (methods, ids, result types).

Usage: sdk2_session.py MODE TOOL ARGS_JSON URL
       sdk2_session.py MODE TOOL ARGS_JSON -- COMMAND [ARG...]   (stdio)
-> one JSON line on stdout.
"""

import asyncio
import importlib.metadata
import json
import logging
import sys
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

# What the callbacks answered; the tool results must carry it.
MODEL_REPLY = "Paris, said the Python SDK 2"
callbacks: list[dict[str, Any]] = []
wire: list[dict[str, Any]] = []


def summary(direction: str, item: Any) -> dict[str, Any]:
    """The parts of one JSON-RPC message the test looks at."""
    if isinstance(item, Exception):
        return {"dir": direction, "exception": repr(item)}
    raw = item.message.model_dump(by_alias=True, mode="json", exclude_unset=True)
    entry: dict[str, Any] = {"dir": direction}
    for key in ("id", "method"):
        if key in raw:
            entry[key] = raw[key]
    params = raw.get("params") or {}
    if "method" in raw:
        if "name" in params:
            entry["name"] = params["name"]
        if "protocolVersion" in params:
            entry["protocolVersion"] = params["protocolVersion"]
        if "inputResponses" in params:
            entry["inputResponses"] = sorted(params["inputResponses"])
        if "requestState" in params:
            entry["requestState"] = True
    result = raw.get("result")
    if isinstance(result, dict):
        entry["resultType"] = result.get("resultType")
        if "inputRequests" in result:
            entry["inputRequests"] = {
                key: request.get("method") for key, request in result["inputRequests"].items()
            }
        if "requestState" in result:
            entry["requestState"] = True
    if "error" in raw:
        entry["error"] = raw["error"]
    return entry


class TapRead:
    """The transport's read stream, each message recorded."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def __aenter__(self) -> "TapRead":
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._inner.__aexit__(*exc)

    def __aiter__(self) -> "TapRead":
        return self

    async def __anext__(self) -> Any:
        item = await self._inner.__anext__()
        wire.append(summary("in", item))
        return item

    async def receive(self) -> Any:
        item = await self._inner.receive()
        wire.append(summary("in", item))
        return item


class TapWrite:
    """The transport's write stream, each message recorded."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def __aenter__(self) -> "TapWrite":
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._inner.__aexit__(*exc)

    async def send(self, item: Any) -> None:
        wire.append(summary("out", item))
        await self._inner.send(item)


@asynccontextmanager
async def tapped(transport: Any):
    async with transport as (read, write):
        yield TapRead(read), TapWrite(write)


async def sampling(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    asked = [m.content.text for m in params.messages if getattr(m.content, "type", "") == "text"]
    callbacks.append(
        {"kind": "sampling", "request_id": context.request_id, "asked": asked, "answer": MODEL_REPLY}
    )
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text=MODEL_REPLY),
        model="sdk2-test-model",
        stop_reason="endTurn",
    )


async def elicitation(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    schema = getattr(params, "requested_schema", None) or {}
    fields = sorted((schema.get("properties") or {}).keys())
    # Each requested field answered "sdk2-<field>".
    content = {field: f"sdk2-{field}" for field in fields}
    callbacks.append(
        {"kind": "elicitation", "request_id": context.request_id, "asked": [params.message], "answer": content}
    )
    return types.ElicitResult(action="accept", content=content)


async def main(mode: str, tool: str, args: dict, target: list[str]) -> None:
    if target[0] == "--":
        transport = stdio_client(StdioServerParameters(command=target[1], args=target[2:]))
    else:
        transport = streamable_http_client(target[0])
    client = Client(
        tapped(transport),
        mode=mode,
        sampling_callback=sampling,
        elicitation_callback=elicitation,
        read_timeout_seconds=20,
    )
    async with client:
        protocol = client.protocol_version
        info = client.server_info
        result = await client.call_tool(tool, args)
    text = [c.text for c in result.content if getattr(c, "type", "") == "text"]
    print(
        json.dumps(
            {
                "sdk": importlib.metadata.version("mcp"),
                "protocol": protocol,
                "server": info.name if info else None,
                "is_error": result.is_error,
                "text": text,
                "callbacks": callbacks,
                "wire": wire,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    mode, tool, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    asyncio.run(asyncio.wait_for(main(mode, tool, args, sys.argv[4:]), 60))
