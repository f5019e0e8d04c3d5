"""The `Upstream` seam: what the gateway needs from one MCP server, whatever its transport.

Owns: the Protocol every upstream implements, its state machine values, and the immutable snapshot of what a
server offers (era, capabilities, tools, prompts, resources, templates). Does not own: connecting, restarting
(see `client.py`) or naming (see catalog/).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from switchyard.errors import UpstreamUnavailable

__all__ = ["ProgressCallback", "Upstream", "UpstreamSnapshot", "UpstreamState", "unavailable"]

JsonObject = dict[str, Any]
ProgressCallback = Callable[[float, float | None, str | None], Awaitable[None]]
ChangeListener = Callable[["Upstream", frozenset[str]], Awaitable[None]]
"""Called with the upstream and which lists changed: a subset of {"tools", "prompts", "resources", "state"}."""
ResourceListener = Callable[[str], Awaitable[None]]
"""Called with the URI of a resource the server reported as updated."""


class UpstreamState(StrEnum):
    """Where an upstream is in its life."""

    STARTING = "starting"
    UP = "up"
    DOWN = "down"
    STOPPED = "stopped"


def unavailable(server: str, state: UpstreamState, last_error: str | None, *, reconnects: bool) -> UpstreamUnavailable:
    """Why a call cannot reach `server` in `state`, naming it and saying what the gateway is doing about it
    (`reconnects`: an HTTP server is reconnected, a stdio one restarted)."""
    if state is UpstreamState.STARTING:
        return UpstreamUnavailable(server, "it is still starting; try again in a moment")
    if state is UpstreamState.STOPPED:
        return UpstreamUnavailable(server, "the gateway has stopped it")
    doing = "reconnecting to it" if reconnects else "restarting it"
    return UpstreamUnavailable(
        server, f"it is down ({last_error or 'it stopped'}); the gateway is {doing}, try again shortly"
    )


@dataclass(frozen=True, slots=True)
class UpstreamSnapshot:
    """What one server offered at its last successful listing. Items are wire dicts, unchanged."""

    era: str
    server_info: JsonObject | None = None
    capabilities: JsonObject = field(default_factory=dict[str, Any])
    instructions: str | None = None
    tools: tuple[JsonObject, ...] = ()
    prompts: tuple[JsonObject, ...] = ()
    resources: tuple[JsonObject, ...] = ()
    templates: tuple[JsonObject, ...] = ()


class Upstream(Protocol):
    """One MCP server behind the gateway, with one persistent session shared by every call."""

    @property
    def name(self) -> str:
        """The server's name in the configuration."""
        ...

    @property
    def state(self) -> UpstreamState:
        """Current state."""
        ...

    @property
    def snapshot(self) -> UpstreamSnapshot | None:
        """The last listing, or None if the server never came up."""
        ...

    @property
    def last_error(self) -> str | None:
        """Why the server is down, in one line, or None."""
        ...

    async def request(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        *,
        timeout: float,
        on_progress: ProgressCallback | None = None,
        client_capabilities: Mapping[str, Any] | None = None,
    ) -> JsonObject:
        """Send one request on the shared session and return the raw result dict.

        `client_capabilities` are the calling front client's; on a modern session they replace the gateway's
        own in the request, so the server only asks for input the client can give.

        Raises:
            UpstreamError: the server answered with a JSON-RPC error.
            UpstreamUnavailable: the server is down or died during the call.
            UpstreamTimeout: no answer within `timeout` seconds.
        """
        ...

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until the server is up or has failed its first attempt; True if up."""
        ...
