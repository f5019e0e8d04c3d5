"""`UpstreamLane` in-process: what it writes, which lines it takes, and how a call ends (answer, error,
timeout, cancellation, a closed connection). The lane against real servers is tests/e2e/test_lanes.py."""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError
from mcp_types import methods
from pydantic import ValidationError

from switchyard.upstream.lane import UpstreamLane, checked_result, lanes_enabled

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"
LEGACY = "2025-11-25"


def stamp(data: dict[str, Any], opts: Any) -> None:
    """A modern session's stamp: the envelope in `_meta` (what the lane must send unchanged)."""
    data["params"].setdefault("_meta", {})["io.modelcontextprotocol/protocolVersion"] = MODERN


def no_stamp(data: dict[str, Any], opts: Any) -> None:
    """A handshake-era session stamps nothing into the body."""


class Server:
    """The far end of the lane: records the lines written to it and answers when told."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self.written = anyio.Event()

    async def send(self, data: bytes, deadline: float) -> None:
        assert deadline > 0
        assert data.endswith(b"\n")
        assert data.count(b"\n") == 1
        self.lines.append(json.loads(data))
        self.written.set()

    async def next_request(self) -> dict[str, Any]:
        with anyio.fail_after(5):
            while not any("id" in line and "method" in line for line in self.lines):
                self.written = anyio.Event()
                await self.written.wait()
        return next(line for line in self.lines if "id" in line and "method" in line)


async def call_with(lane: UpstreamLane, server: Server, answer: Any, **kwargs: Any) -> Any:
    """Make one call; `answer(request)` is the line the server sends back (bytes), or None for no answer."""
    out: dict[str, Any] = {}

    async def caller() -> None:
        try:
            options: dict[str, Any] = {"stamp": no_stamp, "version": LEGACY, "timeout": 5.0, **kwargs}
            out["result"] = await lane.request("tools/call", {"name": "echo", "arguments": {"text": "hi"}}, **options)
        except Exception as exc:
            out["error"] = exc

    async with anyio.create_task_group() as tg:
        lane.attach(server.send, tg)
        tg.start_soon(caller)
        request = await server.next_request()
        line = answer(request)
        if line is not None:
            assert lane.offer(line) is True
    return out


def result_line(request: dict[str, Any], result: dict[str, Any]) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}).encode()


async def test_an_answer_with_the_calls_id_completes_the_call_with_its_result() -> None:
    lane, server = UpstreamLane("s"), Server()
    result = {"content": [{"type": "text", "text": "hi"}], "isError": False}
    out = await call_with(lane, server, lambda r: result_line(r, result))
    assert out == {"result": result}
    (request,) = server.lines
    assert request["jsonrpc"] == "2.0"
    assert request["method"] == "tools/call"
    assert request["params"] == {"name": "echo", "arguments": {"text": "hi"}}
    assert str(request["id"]).startswith("sy-")


async def test_the_request_carries_the_sessions_stamp_and_its_id_as_progress_token_when_progress_is_wanted() -> None:
    lane, server = UpstreamLane("s"), Server()
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    def answer(request: dict[str, Any]) -> bytes:
        token = request["params"]["_meta"]["progressToken"]
        assert token == request["id"]
        params = {"progressToken": token, "progress": 1, "total": 2, "message": "half"}
        note = {"jsonrpc": "2.0", "method": "notifications/progress", "params": params}
        assert lane.offer(json.dumps(note).encode()) is True
        return result_line(request, {"content": [], "resultType": "complete"})

    out = await call_with(lane, server, answer, stamp=stamp, version=MODERN, on_progress=on_progress)
    assert out["result"]["content"] == []
    assert server.lines[0]["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] == MODERN
    assert seen == [(1.0, 2.0, "half")]


async def test_progress_reaches_the_caller_in_order_and_before_the_answer_even_when_delivery_is_slow() -> None:
    # A caller whose progress channel waits (an HTTP response stream with no buffer does) must still get every
    # notification, in order, before the call returns: the SDK session delivers them in turn before the answer.
    lane, server = UpstreamLane("s"), Server()
    seen: list[float] = []
    seen_at_return: list[list[float]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        await anyio.sleep(0.02 * (4 - progress))  # the first waits longest: a task per delivery would reorder
        seen.append(progress)

    async def caller() -> None:
        options: dict[str, Any] = {"stamp": stamp, "version": MODERN, "timeout": 5.0, "on_progress": on_progress}
        await lane.request("tools/call", {"name": "echo", "arguments": {}}, **options)
        seen_at_return.append(list(seen))

    async with anyio.create_task_group() as tg:
        lane.attach(server.send, tg)
        tg.start_soon(caller)
        request = await server.next_request()
        token = request["params"]["_meta"]["progressToken"]
        for step in (1, 2, 3):
            params = {"progressToken": token, "progress": step}
            note = {"jsonrpc": "2.0", "method": "notifications/progress", "params": params}
            assert lane.offer(json.dumps(note).encode()) is True
        assert lane.offer(result_line(request, {"content": [], "resultType": "complete"})) is True
    assert seen_at_return == [[1.0, 2.0, 3.0]]


async def test_an_error_answer_raises_the_servers_code_message_and_data() -> None:
    lane, server = UpstreamLane("s"), Server()

    def answer(request: dict[str, Any]) -> bytes:
        error = {"code": -32050, "message": "no such thing", "data": {"why": "test"}}
        return json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": error}).encode()

    out = await call_with(lane, server, answer)
    error = out["error"]
    assert isinstance(error, MCPError)
    assert (error.code, error.message, error.data) == (-32050, "no such thing", {"why": "test"})


async def test_an_answer_with_both_result_and_error_is_the_error_as_the_sdk_reads_it() -> None:
    lane, server = UpstreamLane("s"), Server()

    def answer(request: dict[str, Any]) -> bytes:
        both = {"result": {"content": []}, "error": {"code": -32000, "message": "ERROR"}}
        return json.dumps({"jsonrpc": "2.0", "id": request["id"], **both}).encode()

    out = await call_with(lane, server, answer)
    assert isinstance(out["error"], MCPError)
    assert out["error"].message == "ERROR"


async def test_a_log_message_during_the_lanes_only_call_reaches_the_caller_before_the_answer() -> None:
    # Left to the session, a log message is delivered by a task of its own: the answer could overtake it and,
    # with the call gone, the message would be dropped.
    delivered: list[Any] = []
    returned_after: list[int] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        await anyio.sleep(0.05)  # a slow delivery: the answer must still wait for it
        delivered.append(params.data)

    lane, server = UpstreamLane("s", on_log=on_log), Server()

    async def caller() -> None:
        await lane.request("tools/call", {"name": "echo", "arguments": {}}, stamp=stamp, version=MODERN, timeout=5.0)
        returned_after.append(len(delivered))

    log = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "working"}}
    async with anyio.create_task_group() as tg:
        lane.attach(server.send, tg)
        tg.start_soon(caller)
        request = await server.next_request()
        assert lane.offer(json.dumps(log).encode()) is True
        assert lane.offer(result_line(request, {"content": [], "resultType": "complete"})) is True
    assert delivered == ["working"]
    assert returned_after == [1]
    assert lane.offer(json.dumps(log).encode()) is False  # no call pending: the session's, as before


async def test_a_result_the_negotiated_version_rejects_raises_as_the_sdk_session_does() -> None:
    lane, server = UpstreamLane("s"), Server()
    out = await call_with(lane, server, lambda r: result_line(r, {"content": "not a list"}))
    assert isinstance(out["error"], ValidationError)


async def test_a_timed_out_call_raises_request_timeout_and_is_cancelled_at_the_server() -> None:
    lane, server = UpstreamLane("s"), Server()
    out = await call_with(lane, server, lambda r: None, timeout=0.05)
    error = out["error"]
    assert isinstance(error, MCPError)
    assert error.code == types.REQUEST_TIMEOUT
    assert "timed out" in error.message
    request, cancel = server.lines
    assert cancel["method"] == "notifications/cancelled"
    assert cancel["params"]["requestId"] == request["id"]
    # A late answer to the abandoned call is taken by the lane (and dropped), not handed to the session.
    assert lane.offer(result_line(request, {"content": []})) is True


async def test_a_cancelled_caller_cancels_the_call_at_the_server() -> None:
    lane, server = UpstreamLane("s"), Server()
    async with anyio.create_task_group() as tg:
        lane.attach(server.send, tg)

        async def caller() -> None:
            await lane.request("tools/call", {"name": "x"}, stamp=no_stamp, version=LEGACY, timeout=30)

        tg.start_soon(caller)
        request = await server.next_request()
        tg.cancel_scope.cancel()
    assert server.lines[-1] == {
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": request["id"], "reason": "caller cancelled"},
    }


async def test_a_closed_connection_ends_waiting_calls_and_refuses_new_ones() -> None:
    lane, server = UpstreamLane("s"), Server()

    def close(request: dict[str, Any]) -> None:
        lane.close()

    out = await call_with(lane, server, close)
    assert isinstance(out["error"], MCPError)
    assert out["error"].code == types.CONNECTION_CLOSED
    assert not lane.open
    with pytest.raises(MCPError) as caught:
        await lane.request("tools/call", {"name": "x"}, stamp=no_stamp, version=LEGACY, timeout=1)
    assert caught.value.code == types.CONNECTION_CLOSED


def test_lines_that_are_not_the_lanes_go_to_the_session() -> None:
    lane = UpstreamLane("s")
    session_lines = [
        b'{"jsonrpc":"2.0","id":3,"result":{"tools":[]}}',  # an answer to the session's own request
        b'{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}',
        b'{"jsonrpc":"2.0","id":"sy-elicit","method":"elicitation/create","params":{}}',  # a pushed request
        b'{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"sy-9","progress":1}}',
        b'{"jsonrpc":"2.0","id":4,"result":{"content":[{"type":"text","text":"say \\"sy-1\\""}]}}',
        b"not json at all",
    ]
    assert [lane.offer(line) for line in session_lines] == [False] * len(session_lines)


def test_lanes_can_be_turned_off_with_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SWITCHYARD_LANES", raising=False)
    assert lanes_enabled()
    monkeypatch.setenv("SWITCHYARD_LANES", "off")
    assert not lanes_enabled()


async def test_a_write_the_server_does_not_read_ends_at_the_calls_deadline() -> None:
    """The lane's pipe writer (`pipes._lane_send`) on a real process that never reads its stdin: a write the
    pipe cannot take waits for the reader only until the deadline."""
    from switchyard.upstream.pipes import _lane_send  # pyright: ignore[reportPrivateUsage]  # noqa: PLC0415

    process = await anyio.open_process([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert process.stdin is not None
        send = _lane_send(process.stdin)
        await send(b'{"small": true}\n', anyio.current_time() + 5)  # the pipe takes it at once
        start = anyio.current_time()
        with pytest.raises(TimeoutError):
            with anyio.fail_after(10):  # the test's own bound
                await send(b"x" * (4 << 20) + b"\n", anyio.current_time() + 0.3)
        assert 0.25 <= anyio.current_time() - start < 5
    finally:
        process.kill()
        with anyio.move_on_after(5):
            await process.wait()


_RESULTS: list[Any] = [
    {"content": [{"type": "text", "text": "ping"}]},
    {"resultType": "complete", "content": [{"type": "text", "text": "ping"}], "structuredContent": {"a": 1}},
    {"resultType": "complete", "content": [], "isError": True, "_meta": {"k": "v"}, "extra": [1, 2]},
    {"resultType": "complete", "content": [{"type": "image", "data": "aGk=", "mimeType": "image/png"}]},
    {"resultType": "complete", "content": [{"type": "text"}]},
    {"resultType": "complete", "content": "not a list"},
    {"resultType": "complete", "content": [{"type": "text", "text": "x"}], "isError": "yes"},
    {"resultType": "input_required", "inputRequests": {}},
    {"resultType": "nonsense", "content": []},
]


@pytest.mark.parametrize("version", [MODERN, LEGACY])
@pytest.mark.parametrize("raw", _RESULTS)
def test_the_result_check_accepts_and_rejects_what_the_sdks_check_does(version: str, raw: dict[str, Any]) -> None:
    """`checked_result` validates without the SDK's throwaway dump: the same results pass and fail."""

    def outcome(check: Any) -> str:
        try:
            check()
        except ValidationError as exc:
            return f"invalid: {sorted(str(e['loc']) for e in exc.errors())}"
        return "valid"

    ours = outcome(lambda: checked_result("tools/call", version, dict(raw)))
    sdk = outcome(lambda: methods.validate_server_result("tools/call", version, dict(raw)))
    assert ours == sdk


def test_the_result_check_refuses_an_unknown_version_and_skips_a_method_the_version_lacks() -> None:
    with pytest.raises(ValueError, match="known protocol version"):
        checked_result("tools/call", "1999-01-01", {"content": []})
    raw = {"anything": [1]}
    assert checked_result("no/such-method", MODERN, raw) == raw
