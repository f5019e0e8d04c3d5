"""Requests a legacy upstream pushes mid-call (elicitation, sampling, roots), routed to the calling client.

Owns: the `InputBridge` seam a front sets around a call (a context variable), and the routing rule on the
upstream side. A 2025-11-25 server's `elicitation/create` carries nothing that names the call it belongs to, and
the gateway shares one session among all callers; so a pushed request is routed only when exactly one call is
in flight on that server, and only to a caller that declared the capability. Otherwise it is refused (an error
to the server), never guessed: a question must not reach the wrong person. Does not own how the front answers
(server/mrtr.py).
"""

from __future__ import annotations

import contextvars
import itertools
from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast

import mcp_types as types
from mcp.client.session import ClientRequestContext

from switchyard.upstream.base import ProgressCallback

__all__ = ["INPUT_BRIDGE", "PROGRESS_SCREEN", "InFlight", "InputBridge", "declares"]

JsonObject = dict[str, Any]


class InputBridge(Protocol):
    """Answers one pushed request on behalf of the front client that made the call."""

    def can(self, method: str, params: Mapping[str, Any] | None = None) -> bool:
        """Whether the client declared the capability `method` with `params` needs (`declares`)."""
        ...

    async def ask(self, method: str, params: Mapping[str, Any] | None) -> JsonObject:
        """Get the client's answer (a result dict), or raise `MCPError`."""
        ...

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        """Pass a server's log message on to the client (which applies its own level)."""
        ...


INPUT_BRIDGE: contextvars.ContextVar[InputBridge | None] = contextvars.ContextVar(
    "switchyard_input_bridge", default=None
)

PROGRESS_SCREEN: contextvars.ContextVar[Callable[[ProgressCallback], ProgressCallback] | None] = contextvars.ContextVar(
    "switchyard_progress_screen", default=None
)
"""Set around a call by a stage that must see the call's progress messages before its caller does (the output
guard): the gateway hands the upstream `screen(on_progress)` instead of `on_progress`."""

_CAPABILITY = {"elicitation/create": "elicitation", "sampling/createMessage": "sampling", "roots/list": "roots"}


def declares(caps: Any, method: str, params: Mapping[str, Any] | None = None) -> bool:
    """Whether client capabilities `caps` (typed, or as sent) cover `method` with `params`: the capability is
    declared, and for `elicitation/create` the request's mode too (`form` when it names none). An empty
    `elicitation` object declares form mode only (the 2025-06-18 shape)."""
    name = _CAPABILITY.get(method)
    if name is None or caps is None:
        return False
    found: Any = cast(Mapping[str, Any], caps).get(name) if isinstance(caps, Mapping) else getattr(caps, name, None)
    if found is None:
        return False
    if name != "elicitation":
        return True
    mode: Any = (params or {}).get("mode") or "form"
    if isinstance(found, Mapping):
        declared = cast(Mapping[str, Any], found)
    elif hasattr(found, "model_dump"):
        declared = cast(Mapping[str, Any], found.model_dump(exclude_none=True))
    else:
        return False
    if mode == "form":
        return "form" in declared or "url" not in declared
    return mode in declared


_NO_ROUTE = "the gateway cannot tell which caller this request is for (several calls in flight); refused"


class InFlight:
    """The calls in flight on one upstream, with the bridge of each caller."""

    def __init__(self) -> None:
        self._calls: dict[int, InputBridge | None] = {}
        self._ids = itertools.count()

    def enter(self) -> int:
        """Register the current call (its bridge is read from the context)."""
        key = next(self._ids)
        self._calls[key] = INPUT_BRIDGE.get()
        return key

    def leave(self, key: int) -> None:
        """Forget a finished call."""
        self._calls.pop(key, None)

    async def route(self, method: str, params: Mapping[str, Any] | None) -> JsonObject | types.ErrorData:
        """Route a pushed request to its caller, or explain why it cannot be answered."""
        if len(self._calls) != 1:
            return types.ErrorData(code=types.INVALID_REQUEST, message=_NO_ROUTE)
        bridge = next(iter(self._calls.values()))
        if bridge is None or not bridge.can(method, params):
            return types.ErrorData(code=types.INVALID_REQUEST, message=f"the calling client cannot answer {method}")
        return await bridge.ask(method, params)

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        """`logging_callback`: a log message goes to the caller when there is exactly one, else it is dropped."""
        if len(self._calls) != 1:
            return
        bridge = next(iter(self._calls.values()))
        if bridge is not None:
            await bridge.log(params)

    # The SDK's callback shapes: each returns a typed result or ErrorData.

    async def elicit(self, context: ClientRequestContext, params: Any) -> Any:
        """`elicitation_callback` for the upstream session."""
        out = await self.route("elicitation/create", _dump(params))
        return out if isinstance(out, types.ErrorData) else types.ElicitResult.model_validate(out, by_name=False)

    async def sample(self, context: ClientRequestContext, params: Any) -> Any:
        """`sampling_callback` for the upstream session."""
        out = await self.route("sampling/createMessage", _dump(params))
        if isinstance(out, types.ErrorData):
            return out
        return types.CreateMessageResult.model_validate(out, by_name=False)

    async def roots(self, context: ClientRequestContext) -> Any:
        """`list_roots_callback` for the upstream session."""
        out = await self.route("roots/list", None)
        return out if isinstance(out, types.ErrorData) else types.ListRootsResult.model_validate(out, by_name=False)


def _dump(params: Any) -> JsonObject | None:
    if params is None:
        return None
    dumped: JsonObject = params.model_dump(by_alias=True, mode="json", exclude_none=True)
    return dumped
