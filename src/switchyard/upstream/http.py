"""`HttpUpstream`: an MCP server reached over Streamable HTTP.

Owns: the HTTP client for one upstream (its configured headers, bounded timeouts). The client's own token is
never forwarded here: per-upstream credentials come only from the configuration. Does not own the session.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import httpx2
from mcp.client.streamable_http import streamable_http_client

from switchyard.config import HttpServerConfig
from switchyard.upstream.client import ClientUpstream

__all__ = ["HttpUpstream"]

# Results can be large (tests use 20 MB); the SDK's default SSE event cap is smaller.
_MAX_EVENT_BYTES = 64 * 1024 * 1024


class HttpUpstream(ClientUpstream):
    """A Streamable HTTP MCP server."""

    def __init__(self, name: str, config: HttpServerConfig, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.config = config

    def _target(self, stack: AsyncExitStack) -> Any:
        http = httpx2.AsyncClient(
            headers=dict(self.config.headers),
            timeout=httpx2.Timeout(30.0, read=None),
            follow_redirects=False,
        )
        stack.push_async_callback(http.aclose)
        return streamable_http_client(self.config.url, http_client=http, max_sse_event_size=_MAX_EVENT_BYTES)
