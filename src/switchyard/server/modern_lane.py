"""`ModernLane`: a quiet 2026-07-28 `tools/call` over HTTP, run by the SDK's request kernel without its entry.

Owns the hot path of a modern tool call on the HTTP front. `QuietLane` (http_lane.py) hands it the requests
that can get nothing but their answer. For those the SDK's `handle_modern_request` would build the request's
models, run `serve_one` (a `ServerRunner` with both request validations and a span) and dump a response model
to JSON. This lane runs the SDK's own checks in the SDK's order (Host/Origin, Accept, the JSON-RPC envelope,
duplicated routing headers, the inbound ladder of `MCP-Protocol-Version` / `Mcp-Method` / `Mcp-Name` and the
`_meta` envelope, the `Mcp-Param-*` headers against the tool's schema), then the kernel the stdio lane runs
(`lane.LaneKernel.modern`) with the SDK's own dispatch context, and writes the SDK's JSON answer.

A request any check would reject is not the lane's: it goes to `handle_modern_request` unchanged, which runs
the same checks again and answers with the spec's error. So do other methods, a `tools/call` without params,
and anything before the lane has run its checks. The lane writes nothing until it has decided to serve.
Errors are mapped as the SDK's entry maps them (`modern_error_data`, the table-mapped HTTP status). The answer
is the SDK's bytes: `json.dumps` of the same dict. A result `json.dumps` refuses (NaN or an infinity, which the
SDK's JSON dump turns into null; bytes, sets or models) takes the SDK's own model dump. One difference is left:
a dict key that is not a string (possible only in a result that middleware or an extension `resultType` shaped
past the SDK's result check; the front's results are model dumps) is written as `json.dumps` writes it, where
the SDK's model dump may write it otherwise or refuse it. Disconnects and the keep-alive stay `QuietLane`'s.

Does not own the checks, the kernel or the handlers (the SDK, `lane.py`, `mcp.py`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import mcp_types as types
from mcp.server import _streamable_http_modern as _modern
from mcp.server.connection import _NO_CHANNEL  # pyright: ignore[reportPrivateUsage] - `from_envelope`'s default
from mcp.server.runner import modern_error_data
from mcp.server.streamable_http import check_accept_headers
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecurityMiddleware
from mcp.shared.inbound import InboundLadderRejection, classify_inbound_request, find_duplicated_routing_header
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from switchyard.server.lane import EnvelopeCache, LaneKernel

__all__ = ["ModernLane"]

logger = logging.getLogger("switchyard.http")


class ModernLane:
    """Serves quiet modern `tools/call` requests for the SDK's session manager `manager` (module docstring)."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self._manager = manager
        self._security = TransportSecurityMiddleware(manager.security_settings)
        self._kernel = LaneKernel(manager.app, "HTTP modern lane")
        self._envelopes = EnvelopeCache(_NO_CHANNEL)  # a few kinds of client at once
        self._announced = False
        self.served = 0
        """Requests the lane answered (tests and benchmarks read it)."""

    async def serve(self, scope: Scope, receive: Receive, send: Send, message: dict[str, Any]) -> bool:
        """Answer the request `message` (the POST's parsed body) when every SDK check passes; False (nothing
        sent) hands it to the SDK."""
        if message.get("method") != "tools/call" or not isinstance(message.get("params"), dict):
            return False
        request = Request(scope, receive)
        if await self._security.validate_request(request, is_post=True) is not None:
            return False
        has_json, _ = check_accept_headers(request)
        if not has_json:
            return False
        try:
            req = types.JSONRPCRequest.model_validate(message)
        except ValidationError:
            return False
        if find_duplicated_routing_header(request.headers.items()) is not None:
            return False
        verdict = classify_inbound_request(message, headers=dict(request.headers))
        if isinstance(verdict, InboundLadderRejection):
            return False
        lifespan = self._manager._lifespan_state  # pyright: ignore[reportPrivateUsage] - what the manager passes itself
        rejection = await _modern._mcp_param_rejection(  # pyright: ignore[reportPrivateUsage] - the SDK's own check
            self._manager.app, request, req, verdict, lifespan
        )
        if rejection is not None or not isinstance(req.params, dict):
            return False
        if not self._announced:
            self._announced = True
            logger.debug("HTTP modern lane: serving quiet tools/call")
        connection = self._envelopes.connection(
            verdict.protocol_version, verdict.client_info, verdict.client_capabilities
        )
        dctx = _modern._SingleExchangeDispatchContext(  # pyright: ignore[reportPrivateUsage] - the SDK's own context
            transport=TransportContext(kind="streamable-http", can_send_request=False, headers=request.headers),
            request_id=req.id,
            message_metadata=ServerMessageMetadata(request_context=request),
        )
        try:
            result = await self._kernel.modern(connection, lifespan, dctx, req.params)
        except Exception as exc:
            error = types.JSONRPCError(jsonrpc="2.0", id=req.id, error=modern_error_data(exc))
            await _modern._write(error, scope, receive, send)  # pyright: ignore[reportPrivateUsage]
            self.served += 1
            return True
        try:
            body = {"jsonrpc": "2.0", "id": req.id, "result": result}
            data = json.dumps(body, separators=(",", ":"), allow_nan=False)
        except (ValueError, TypeError, RecursionError):
            # NaN or an infinity (the SDK's dump writes null), or values that are not JSON (bytes, a set, a
            # model: middleware or an extension result shaped past the SDK's check): the SDK's own dump, or
            # its own error (this raises where `handle_modern_request` raises).
            answer = types.JSONRPCResponse(jsonrpc="2.0", id=req.id, result=result)
            await _modern._write(answer, scope, receive, send)  # pyright: ignore[reportPrivateUsage]
        else:
            await Response(data, status_code=200, media_type="application/json")(scope, receive, send)
        self.served += 1
        return True
