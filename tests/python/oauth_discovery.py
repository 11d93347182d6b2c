"""The Python MCP SDK's OAuth discovery against a server: the 401's resource_metadata, the
SEP-985 fallback URLs, the metadata document, and the SDK's RFC 8707 check that the metadata's
resource covers the URL asked (what `OAuthClientProvider` refuses to go on without).

Usage: oauth_discovery.py SERVER_URL -> one JSON line on stdout.
"""

import asyncio
import json
import sys

import httpx
from mcp.client.auth.utils import (
    build_protected_resource_metadata_discovery_urls,
    extract_resource_metadata_from_www_auth,
    handle_protected_resource_response,
)
from mcp.shared.auth_utils import check_resource_allowed, resource_url_from_server_url


async def main(server_url: str) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        denied = await client.post(
            server_url,
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"accept": "application/json, text/event-stream"},
        )
        www_auth_url = extract_resource_metadata_from_www_auth(denied)
        metadata = None
        for url in build_protected_resource_metadata_discovery_urls(www_auth_url, server_url):
            metadata = await handle_protected_resource_response(await client.get(url))
            if metadata is not None:
                break
    resource = str(metadata.resource) if metadata else None
    allowed = resource is not None and check_resource_allowed(
        requested_resource=resource_url_from_server_url(server_url),
        configured_resource=resource,
    )
    print(json.dumps({"status": denied.status_code, "metadata_url": www_auth_url, "resource": resource, "allowed": allowed}))


asyncio.run(main(sys.argv[1]))
