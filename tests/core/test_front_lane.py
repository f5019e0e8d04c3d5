"""`FrontLane`'s per-request connection for a modern call is the one the SDK's `from_envelope` builds."""

from __future__ import annotations

from typing import Any, cast

from mcp.server.connection import Connection

from switchyard.server.lane import FrontLane

_VERSION = "2026-07-28"
_INFO = {"name": "client", "version": "1.0"}
_CAPS: dict[str, Any] = {"elicitation": {"form": {}}, "roots": {"listChanged": True}}


def _view(connection: Connection) -> tuple[Any, ...]:
    params = connection.client_params
    caps = connection.client_capabilities
    return (
        connection.protocol_version,
        None if params is None else params.model_dump(by_alias=True),
        None if caps is None else caps.model_dump(by_alias=True),
        connection.initialized.is_set(),
    )


def test_each_modern_request_gets_the_connection_from_envelope_would_build() -> None:
    lane = FrontLane(None, cast(Any, None), cast(Any, None))
    envelopes: list[tuple[Any, Any]] = [
        (_INFO, _CAPS),
        (_INFO, _CAPS),  # the same again: served from the kept typed form
        (_INFO, {}),  # capabilities changed
        ({"name": "other", "version": "2"}, {}),  # client info changed
        (_INFO, _CAPS),
        (None, _CAPS),  # no client info: no client params
        (_INFO, "not an object"),  # a mis-shaped value degrades to "not supplied", as in the SDK
    ]
    seen: list[Connection] = []
    for info, caps in envelopes:
        got = lane._envelope_connection(_VERSION, info, caps)  # pyright: ignore[reportPrivateUsage]
        assert _view(got) == _view(Connection.from_envelope(_VERSION, info, caps)), (info, caps)
        assert all(got is not earlier for earlier in seen)  # a connection of its own per request
        seen.append(got)


def test_a_changed_request_dict_does_not_change_the_kept_envelope() -> None:
    lane = FrontLane(None, cast(Any, None), cast(Any, None))
    caps: dict[str, Any] = {"elicitation": {}}
    lane._envelope_connection(_VERSION, _INFO, caps)  # pyright: ignore[reportPrivateUsage]
    caps["sampling"] = {}  # a later stage edits the request's own dict
    edited: dict[str, Any] = {"elicitation": {}, "sampling": {}}
    got = lane._envelope_connection(_VERSION, _INFO, edited)  # pyright: ignore[reportPrivateUsage]
    assert _view(got) == _view(Connection.from_envelope(_VERSION, _INFO, edited))
