"""`HttpUpstream`: an MCP server reached over Streamable HTTP.

Owns: the HTTP client for one upstream (its configured headers, bounded timeouts), and attaching the HTTP lane
(`http_lane.py`) to a connection that negotiated the stateless revision. The client's own token is never
forwarded here: per-upstream credentials come only from the configuration. Does not own the session.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any, cast

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from switchyard.config import HttpServerConfig
from switchyard.upstream.client import ClientUpstream
from switchyard.upstream.http_lane import HttpLane, proxied
from switchyard.upstream.lane import lanes_enabled
from switchyard.upstream.watch import ClosedWatch

__all__ = ["HttpUpstream"]

logger = logging.getLogger("switchyard.upstream")

# Results can be large (tests use 20 MB); the SDK's default SSE event cap is smaller.
_MAX_EVENT_BYTES = 64 * 1024 * 1024


class HttpUpstream(ClientUpstream):
    """A Streamable HTTP MCP server."""

    def __init__(self, name: str, config: HttpServerConfig, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.config = config
        self._http: httpx2.AsyncClient | None = None

    _reconnects = True

    def _secret_values(self) -> Mapping[str, str]:
        return self.config.headers

    def _target(self, stack: AsyncExitStack) -> Any:
        http = httpx2.AsyncClient(
            headers=dict(self.config.headers),
            timeout=httpx2.Timeout(30.0, read=None),
            follow_redirects=False,
        )
        stack.push_async_callback(http.aclose)
        self._http = http
        return streamable_http_client(self.config.url, http_client=http, max_sse_event_size=_MAX_EVENT_BYTES)

    def _connected(self, client: Client, watch: ClosedWatch, stack: AsyncExitStack) -> None:
        http = self._http
        if http is None or not lanes_enabled() or client.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            return
        if proxied(self.config.url):
            logger.debug("server %s: a proxy from the environment applies; the HTTP lane is not used", self.name)
            return
        session = client.session

        async def notify(method: str, params: Mapping[str, Any] | None) -> None:
            # The session's own routing of a notification it read (validation, logging callback, message handler).
            await session._on_notify(cast(Any, None), method, params)  # pyright: ignore[reportPrivateUsage]

        lane = HttpLane(self.name, self.config.url, http.headers, max_event_bytes=_MAX_EVENT_BYTES)
        lane.attach(notify, watch.close)
        self.lane = lane
        stack.push_async_callback(self._detach, lane)

    async def _detach(self, lane: HttpLane) -> None:
        if self.lane is lane:
            self.lane = None
        await lane.aclose()
