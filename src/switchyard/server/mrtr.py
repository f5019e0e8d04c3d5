"""Input-required (MRTR) bridging for legacy front clients.

Owns: running the multi-round-trip loop on behalf of a 2025-11-25 client, which cannot receive an
`input_required` result: each embedded input request (elicitation, sampling, roots) is pushed to the client's
session as a real server-to-client request, and the original request is retried upstream with the answers and
the (sealed) request state, until the upstream completes or the round limit is reached. Does not own sealing
(sealing.py) or the modern pass-through (the gateway forwards those results as they are).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from pydantic import BaseModel, TypeAdapter, ValidationError

from switchyard.errors import InvalidRequest
from switchyard.upstream.base import JsonObject

__all__ = ["drive_for_legacy_client", "is_input_required"]

_INPUT_REQUEST: TypeAdapter[types.InputRequest] = TypeAdapter(types.InputRequest)
_RESULT_TYPES: dict[str, type[BaseModel]] = {
    "elicitation/create": types.ElicitResult,
    "sampling/createMessage": types.CreateMessageResult,
    "roots/list": types.ListRootsResult,
}
_CAPABILITY = {"elicitation/create": "elicitation", "sampling/createMessage": "sampling", "roots/list": "roots"}


def is_input_required(result: Mapping[str, Any]) -> bool:
    """Whether an upstream result asks the client for input."""
    return result.get("resultType") == "input_required"


async def _ask(ctx: ServerRequestContext[Any, Any], raw: Mapping[str, Any]) -> JsonObject:
    method = str(raw.get("method", ""))
    if method not in _RESULT_TYPES:
        raise InvalidRequest(f"the upstream asked for unsupported input {method!r}")
    caps = ctx.session.client_capabilities
    if caps is None or getattr(caps, _CAPABILITY[method], None) is None:
        raise InvalidRequest(f"the upstream asked for {method}, which this client did not declare it supports")
    try:
        request = _INPUT_REQUEST.validate_python(raw, by_name=False)
    except ValidationError:
        raise InvalidRequest(f"the upstream sent a malformed {method} request") from None
    metadata = ServerMessageMetadata(related_request_id=ctx.request_id) if ctx.request_id is not None else None
    result = await ctx.session.send_request(
        cast(types.ServerRequest, request), _RESULT_TYPES[method], metadata=metadata
    )
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


async def drive_for_legacy_client(
    ctx: ServerRequestContext[Any, Any],
    params: Mapping[str, Any],
    result: JsonObject,
    retry: Callable[[JsonObject], Awaitable[JsonObject]],
    *,
    max_rounds: int,
) -> JsonObject:
    """Resolve `input_required` results by asking the legacy client, then retry, until complete.

    Raises:
        InvalidRequest: the loop did not finish within `max_rounds`, or the client cannot answer.
    """
    for _ in range(max_rounds):
        if not is_input_required(result):
            return result
        requests = cast(Mapping[str, Any], result.get("inputRequests") or {})
        answers: JsonObject = {}
        for key, raw in requests.items():
            try:
                answers[key] = await _ask(ctx, cast(Mapping[str, Any], raw))
            except MCPError as exc:
                raise InvalidRequest(f"the client could not answer the upstream's request: {exc.message}") from None
        again: JsonObject = {**params, "inputResponses": answers}
        if "requestState" in result:
            again["requestState"] = result["requestState"]
        else:
            again.pop("requestState", None)
        result = await retry(again)
    if is_input_required(result):
        raise InvalidRequest(f"the upstream still needed input after {max_rounds} rounds")
    return result
