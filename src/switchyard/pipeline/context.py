"""`CallContext`: everything a stage may know about one request, frozen.

Owns the shape of per-request facts (who, which era, which method and item, arguments, timing). Does not own
any decision: stages decide, the context only carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from switchyard.identity import LOCAL, Principal
from switchyard.upstream.base import ProgressCallback

__all__ = ["CallContext"]


@dataclass(frozen=True, slots=True)
class CallContext:
    """One request passing through the gateway.

    Attributes:
        method: the MCP method, e.g. "tools/call".
        name: the client-facing item name (tool or prompt name, or resource URI).
        params: the request params as the client sent them.
        server: the upstream that owns the item, once resolved.
        original: the item's name on its upstream.
        era: the protocol version the front client speaks.
        principal: who is calling (`identity.LOCAL` on stdio and in-process).
        client_info: the client's implementation info, if it sent any.
        client_capabilities: what the client declared it can do (forwarded so an upstream never asks for more).
        on_progress: where upstream progress goes, if the client asked for progress.
        started: monotonic start time.
    """

    method: str
    name: str
    params: Mapping[str, Any]
    server: str = ""
    original: str = ""
    era: str = ""
    principal: Principal = LOCAL
    client_info: Mapping[str, Any] | None = None
    client_capabilities: Mapping[str, Any] | None = None
    on_progress: ProgressCallback | None = None
    started: float = 0.0
    extras: Mapping[str, Any] = field(default_factory=dict[str, Any])
