"""`FrontLane`: its per-request connection for a modern call is the one the SDK's `from_envelope` builds, and
the params it runs without the kernel's validation are ones that validation accepts unchanged."""

from __future__ import annotations

from typing import Any, cast

import mcp_types as types
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.server.connection import Connection
from mcp_types import methods as _methods

from switchyard.server.lane import (  # pyright: ignore[reportPrivateUsage]
    FrontLane,
    LaneKernel,
    _LaneContext,
    plain_call_params,
)
from switchyard.upstream.lane import tracing_active

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
        got = lane._envelopes.connection(_VERSION, info, caps)  # pyright: ignore[reportPrivateUsage]
        assert _view(got) == _view(Connection.from_envelope(_VERSION, info, caps)), (info, caps)
        assert all(got is not earlier for earlier in seen)  # a connection of its own per request
        seen.append(got)


def test_a_changed_request_dict_does_not_change_the_kept_envelope() -> None:
    lane = FrontLane(None, cast(Any, None), cast(Any, None))
    caps: dict[str, Any] = {"elicitation": {}}
    lane._envelopes.connection(_VERSION, _INFO, caps)  # pyright: ignore[reportPrivateUsage]
    caps["sampling"] = {}  # a later stage edits the request's own dict
    edited: dict[str, Any] = {"elicitation": {}, "sampling": {}}
    got = lane._envelopes.connection(_VERSION, _INFO, edited)  # pyright: ignore[reportPrivateUsage]
    assert _view(got) == _view(Connection.from_envelope(_VERSION, _INFO, edited))


# --- plain params: the shapes the lane may run without the kernel's validation ---------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_ENVELOPE = {
    types.PROTOCOL_VERSION_META_KEY: _VERSION,
    types.CLIENT_INFO_META_KEY: _INFO,
    types.CLIENT_CAPABILITIES_META_KEY: _CAPS,
}
_META_KEY = st.sampled_from(["progressToken", "traceparent", "io.modelcontextprotocol/logLevel", "x"]) | st.text(
    max_size=6
)


@st.composite
def _params(draw: st.DrawFn, modern: bool) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if draw(st.integers(0, 9)):  # mostly named
        params["name"] = draw(st.text(max_size=10) | _JSON)
    if draw(st.booleans()):
        params["arguments"] = draw(st.dictionaries(st.text(max_size=6), _JSON, max_size=3) | _JSON)
    if draw(st.booleans()):
        meta: Any = draw(st.dictionaries(_META_KEY, _JSON | st.integers() | st.text(max_size=5), max_size=2) | _JSON)
        if modern and isinstance(meta, dict):
            meta = {**cast(dict[str, Any], meta), **_ENVELOPE}
        params["_meta"] = meta
    elif modern:
        params["_meta"] = dict(_ENVELOPE)
    if draw(st.booleans()):
        params[draw(st.sampled_from(["task", "inputResponses", "requestState", "extra"]))] = draw(_JSON)
    return params


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), modern=st.booleans())
def test_plain_params_are_ones_the_sdk_validation_accepts_unchanged(data: st.DataObject, modern: bool) -> None:
    params = data.draw(_params(modern))
    if not plain_call_params(params, modern=modern):
        return
    version = _VERSION if modern else "2025-11-25"
    _methods.validate_client_request("tools/call", version, params)  # raises if the SDK would reject them
    typed = types.CallToolRequestParams.model_validate(params, by_name=False)
    assert typed.name == params["name"]
    assert typed.arguments == params.get("arguments")


class _Server:
    """What `LaneKernel.plain` reads of a server."""

    middleware: list[Any] = []  # noqa: RUF012 - read only

    def get_request_handler(self, method: str) -> Any:
        return f"handler of {method}"


_ENVELOPE_VALUE = (
    st.none()
    | _JSON
    | st.sampled_from([_INFO, _CAPS, {}])
    | st.dictionaries(st.sampled_from(["elicitation", "sampling", "roots", "name", "version"]), _JSON, max_size=3)
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(info=_ENVELOPE_VALUE, caps=_ENVELOPE_VALUE, keys=st.sampled_from(["both", "no info", "no caps"]))
def test_the_kernel_takes_the_shortcut_only_for_envelopes_the_sdk_validation_accepts(
    info: Any, caps: Any, keys: str
) -> None:
    # The inbound ladder checks the version, not the shapes of client info and capabilities: a null or
    # mis-shaped one must run the whole kernel, whose validation answers -32602 (both lanes use `plain`).
    meta: dict[str, Any] = {types.PROTOCOL_VERSION_META_KEY: _VERSION}
    if keys != "no info":
        meta[types.CLIENT_INFO_META_KEY] = info
    if keys != "no caps":
        meta[types.CLIENT_CAPABILITIES_META_KEY] = caps
    params = {"name": "t", "arguments": {}, "_meta": meta}
    try:
        _methods.validate_client_request("tools/call", _VERSION, params)
        accepted = True
    except ValueError:
        accepted = False
    kernel = LaneKernel(_Server(), "test")
    for _ in range(2):  # the second time from the kept verdict
        assert (kernel.plain(params, modern=True) is not None) is accepted, params


def test_plain_params_turn_back_what_the_kernel_must_see() -> None:
    base: dict[str, Any] = {"name": "t", "arguments": {"a": 1}}
    assert plain_call_params(base, modern=False)
    assert plain_call_params({"name": "t"}, modern=False)
    assert plain_call_params({**base, "_meta": {"progressToken": 3, **_ENVELOPE}}, modern=True)
    refused: list[tuple[dict[str, Any], bool]] = [
        ({"arguments": {}}, False),  # no name
        ({"name": 5}, False),
        ({**base, "arguments": ["x"]}, False),
        ({**base, "_meta": {"progressToken": True}}, False),  # a bool is not a token
        ({**base, "_meta": {"progressToken": 1.5}}, False),
        ({**base, "_meta": {"traceparent": "00-x"}}, False),  # trace context: the span must see it
        ({**base, "_meta": _ENVELOPE}, False),  # an envelope on a handshake connection
        ({**base, "_meta": {**_ENVELOPE, "io.modelcontextprotocol/logLevel": "debug"}}, True),
        ({**base, "task": {"ttl": 5}}, False),
        ({**base, "requestState": "s"}, True),
        ({**base, "_meta": "not an object"}, False),
    ]
    for params, modern in refused:
        assert not plain_call_params(params, modern=modern), params


def test_tracing_active_follows_the_global_tracer_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    import opentelemetry.trace as otel  # noqa: PLC0415

    import switchyard.upstream.lane as lane_module  # noqa: PLC0415

    assert not tracing_active()  # no provider configured in the test process
    monkeypatch.setattr(otel, "_TRACER_PROVIDER", otel.NoOpTracerProvider())
    assert not tracing_active()  # a no-op provider records nothing either
    monkeypatch.setattr(otel, "_TRACER_PROVIDER", object())  # any real provider
    assert tracing_active()
    # Not set yet, but named by OTEL_PYTHON_TRACER_PROVIDER: OpenTelemetry loads it on first use.
    monkeypatch.setattr(otel, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(lane_module, "_PROVIDER_FROM_ENV", True)
    monkeypatch.setattr(lane_module, "get_tracer_provider", object)
    assert tracing_active()


@pytest.mark.anyio
async def test_a_lane_requests_cancel_event_is_set_whether_it_was_asked_for_before_or_after_the_cancel() -> None:
    """The event is made on first use (most requests are never cancelled), so both orders must end set."""
    lane = cast(FrontLane, object())
    before = _LaneContext(lane, 1, None, None)
    event = before.cancel_requested
    assert not event.is_set()
    assert not before.cancelled
    before.cancel()
    assert event.is_set()
    assert before.cancelled
    assert before.cancel_requested is event

    after = _LaneContext(lane, 2, None, None)
    after.cancel()
    assert after.cancelled
    assert after.cancel_requested.is_set()
    untouched = _LaneContext(lane, 3, None, None)
    assert not untouched.cancelled
    assert not untouched.cancel_requested.is_set()
