"""The official MCP Python SDK client (the `mcp` package), end to end against searchgate.

It meets the 401, discovers the authorization server from searchgate's protected-resource
metadata and the AS metadata, registers dynamically, authorizes with PKCE S256 and the RFC 8707
resource, walks the consent page without a browser (the way tests/node/login-flow.mjs does:
follow the authorize URL, post the page's form with its first named button, decision=approve,
stop at the redirect to the client), exchanges the code, then runs `initialize`, `tools/list`
and `tools/call web_search`. A second connection, after the access token is marked expired,
makes the SDK refresh it on its own (refresh_token grant with the resource) and call again, this
time in the SDK's default mode ("auto": `server/discover`, falling back to `initialize`).

Env: MCP_URL. Prints one JSON line with what happened; exits non-zero on failure.
"""

import asyncio
import json
import os
import re
import sys
import time
from html import unescape
from urllib.parse import parse_qs, urljoin, urlparse

import httpx2
from mcp.client import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

MCP_URL = os.environ["MCP_URL"]
# Nothing listens here: the walk stops at the redirect and reads the code from its URL.
REDIRECT = "http://127.0.0.1:33334/callback"


class MemoryStorage:
    """`mcp.client.auth.TokenStorage`, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


async def walk_authorize(authorize_url: str) -> str:
    """Follows the authorization URL through the HTML forms (keeping cookies) until the redirect
    to REDIRECT and returns that URL (with code, state and iss)."""
    url = authorize_url
    method, data = "GET", None
    async with httpx2.AsyncClient(follow_redirects=False, timeout=30) as http:
        for _ in range(20):
            response = await http.request(method, url, data=data)
            method, data = "GET", None
            if 300 <= response.status_code < 400:
                url = urljoin(url, response.headers["location"])
                if url.startswith(REDIRECT):
                    return url
                continue
            html = response.text
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code} at {url}: {html[:500]}")
            form = re.search(r'<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)</form>', html)
            if not form:
                raise RuntimeError(f"no form at {url}: {html[:500]}")
            fields = {}
            for match in re.finditer(r'<input[^>]*name="([^"]+)"(?:[^>]*value="([^"]*)")?', form[2]):
                fields[unescape(match[1])] = unescape(match[2] or "")
            # A named submit button (searchgate's consent page: decision=approve) is the first one.
            button = re.search(r'<button[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form[2])
            if button:
                fields[unescape(button[1])] = unescape(button[2])
            url = urljoin(url, unescape(form[1]))
            method, data = "POST", fields
    raise RuntimeError("too many redirects")


class ConsentWalker:
    """The provider's redirect_handler and callback_handler: the first walks the consent page,
    the second hands the code (with state and the RFC 9207 iss) back to the SDK."""

    def __init__(self) -> None:
        self.authorize: dict[str, str] | None = None
        self.callback: str | None = None

    async def redirect_handler(self, authorization_url: str) -> None:
        self.authorize = {k: v[0] for k, v in parse_qs(urlparse(authorization_url).query).items()}
        self.callback = await walk_authorize(authorization_url)

    async def callback_handler(self) -> AuthorizationCodeResult:
        assert self.callback is not None, "the redirect handler ran first"
        query = {k: v[0] for k, v in parse_qs(urlparse(self.callback).query).items()}
        if "code" not in query:
            raise RuntimeError(f"no code in the redirect: {self.callback}")
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))


def summary(result) -> dict:
    content = result.structured_content
    return {
        "is_error": bool(result.is_error),
        "provider": (content or {}).get("provider"),
        "query": (content or {}).get("query"),
        "results": len((content or {}).get("results") or []),
    }


async def main() -> None:
    requests: list[str] = []

    async def log_response(response: httpx2.Response) -> None:
        requests.append(f"{response.request.method} {response.request.url.path} {response.status_code}")

    storage = MemoryStorage()
    walker = ConsentWalker()
    provider = OAuthClientProvider(
        server_url=MCP_URL,
        client_metadata=OAuthClientMetadata(
            client_name="searchgate-python-sdk-test",
            redirect_uris=[REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=walker.redirect_handler,
        callback_handler=walker.callback_handler,
    )

    def http_client() -> httpx2.AsyncClient:
        return httpx2.AsyncClient(auth=provider, timeout=30, event_hooks={"response": [log_response]})

    # The initialize handshake (mode="legacy"): the revision the TypeScript SDK test uses too.
    async with http_client() as http:
        async with Client(streamable_http_client(MCP_URL, http_client=http), mode="legacy") as client:
            protocol_version = client.protocol_version
            server_name = client.server_info.name if client.server_info else None
            tools = await client.list_tools()
            call = await client.call_tool("web_search", {"query": "python sdk", "max_results": 2})

    first = storage.tokens
    assert first is not None, "the SDK saved its tokens"

    # The SDK refreshes an expired token before the request: mark it expired, connect again,
    # now as `Client(url)` does by default.
    provider.context.token_expiry_time = time.time() - 1
    async with http_client() as http:
        async with Client(streamable_http_client(MCP_URL, http_client=http), mode="auto") as client:
            auto_protocol_version = client.protocol_version
            again = await client.call_tool("web_search", {"query": "after refresh"})

    print(
        json.dumps(
            {
                "protocol_version": protocol_version,
                "server_name": server_name,
                "tools": [tool.name for tool in tools.tools],
                "search": summary(call),
                "authorize": walker.authorize,
                "callback_has_iss": walker.callback is not None and "iss=" in walker.callback,
                "token_type": first.token_type,
                "access_token": first.access_token,
                "scope": first.scope,
                "refreshed": storage.tokens is not None and storage.tokens.access_token != first.access_token,
                "after_refresh": summary(again),
                "auto_protocol_version": auto_protocol_version,
                "client_id": storage.client_info.client_id if storage.client_info else None,
                "requests": requests,
            }
        )
    )


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except BaseException as error:  # a task group wraps the real failure: show all of it
        import traceback

        traceback.print_exception(error, file=sys.stderr)
        sys.exit(1)
