"""Forwarding each front client's real capabilities on the shared upstream session.

Owns one deliberate workaround of the SDK (NOTES.md, pitfall 1): a `ClientSession` stamps its own
connection-level `clientCapabilities` into every modern request's `_meta`. The gateway shares one session
among many front clients, so it wraps the session's stamp to replace them, per request, with the capabilities
of the client that made the call (carried in a context variable set around the send). An upstream therefore
never asks a client for input (elicitation, sampling, roots) that the client did not declare. Legacy sessions
fix capabilities at `initialize`; they are not affected.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping
from typing import Any

from mcp_types import CLIENT_CAPABILITIES_META_KEY

__all__ = ["FRONT_CAPABILITIES", "install_capability_override"]

FRONT_CAPABILITIES: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "switchyard_front_capabilities", default=None
)


def install_capability_override(session: Any) -> None:
    """Wrap `session`'s request stamp so the calling front client's capabilities replace the session's."""
    original: Callable[[dict[str, Any], Any], None] = session._stamp  # the SDK's per-version stamp

    def stamp(data: dict[str, Any], opts: Any) -> None:
        original(data, opts)
        caps = FRONT_CAPABILITIES.get()
        if caps is None:
            return
        meta = data.get("params", {}).get("_meta")
        if isinstance(meta, dict) and CLIENT_CAPABILITIES_META_KEY in meta:
            meta[CLIENT_CAPABILITIES_META_KEY] = dict(caps)

    session._stamp = stamp
