"""The lanes (server/lane.py, upstream/lane.py) answer exactly as the SDK's own path does, on the wire.

Each conversation is a fixed sequence of JSON-RPC lines written to `switchyard serve` over real pipes, with
real upstream processes behind it (the `fast` and `progress` fixtures on mcp 2.3, `legacy_basic` on mcp 1.30),
once with `SWITCHYARD_LANES=off` (every request through the SDK's dispatcher and client session) and once with
the lanes on (the default). Every line the gateway writes back (answers, progress, pushed elicitation
requests) is recorded; the two transcripts must be identical, except for sealed `requestState` values, which
are random per process, and list_changed notifications, which tell when each server came up. The gateway's
debug log must show that the lanes served the calls, so a lane that silently handed everything to the SDK
would fail here.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import Process
from lane_messages import ELICIT_ANSWER, ENVELOPE, MODERN
from lane_messages import call as _call
from lane_messages import masked as _masked
from lane_messages import modern as _modern

pytestmark = pytest.mark.anyio

STEP = 30.0
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


LEGACY_CONVERSATION: list[dict[str, Any]] = [
    {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {"elicitation": {}},
            "clientInfo": {"name": "lane-test", "version": "1.0"},
        },
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    _call(1, "fast__echo", {"text": "hi"}),
    _call(2, "fast__add", {"a": 1, "b": 2}),
    _call(3, "fast__add", {"a": "x"}),  # the tool's own argument validation: an error result
    _call(4, "nope__tool", {}),  # unknown tool
    _call(5, "progress__count", {"steps": 3}, progressToken="p-5"),
    _call("six", "legacy__echo", {"text": "é ünïcode ✓"}),
    _call(7, "legacy__ask_name", {}),  # a legacy upstream pushes elicitation; the gateway pushes it on
    {"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"arguments": {}}},  # no name: SDK's error
    _modern(9, "fast__echo", {"text": "enveloped"}),  # an envelope on a handshake connection: refused
    _call(10, "fast__echo", {"text": "x" * 20000}),
    # Params the lane's plain check turns back to the SDK's whole kernel (validation, span): same answers.
    _call(11, "fast__echo", {"text": "traced"}, traceparent=TRACEPARENT),
    {"jsonrpc": "2.0", "id": 12, "method": "tools/call", "params": {"name": "fast__echo", "arguments": ["x"]}},
    {"jsonrpc": "2.0", "id": 13, "method": "tools/call", "params": {"name": 5, "arguments": {}}},
    _call(14, "fast__echo", {"text": "flag"}, progressToken=True),
    {"jsonrpc": "2.0", "id": 15, "method": "tools/call", "params": {"name": "fast__echo", "task": {"ttl": 5}}},
]

MODERN_CONVERSATION: list[dict[str, Any]] = [
    _modern(1, "fast__echo", {"text": "hi"}),
    _modern(2, "fast__add", {"a": 1, "b": 2}),
    _modern(3, "progress__count", {"steps": 3}, progressToken=33),
    _call(4, "fast__echo", {"text": "no envelope"}),  # a modern connection without the envelope
    {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "tools/call",
        "params": {
            "name": "fast__echo",
            "arguments": {"text": "x"},
            "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN},  # capabilities missing: -32602
        },
    },
    _call(6, "fast__echo", {"text": "x"}, **{**ENVELOPE, "io.modelcontextprotocol/protocolVersion": "2099-01-01"}),
    _modern(7, "nope__tool", {}),
    _modern("eight", "legacy__add", {"a": 2, "b": 40}),  # a modern client, a legacy upstream
    _modern(9, "legacy__ask_name", {}),  # becomes input_required with a sealed state
    # The same client without the elicitation capability (the lane keeps the last envelope's typed form: a
    # changed envelope must be read anew), then with it again.
    _call(10, "legacy__ask_name", {}, **{**ENVELOPE, "io.modelcontextprotocol/clientCapabilities": {}}),
    _modern(11, "fast__echo", {"text": "back"}),
    _modern(12, "fast__echo", {"text": "traced"}, traceparent=TRACEPARENT),
    _modern(13, "fast__echo", ["x"]),  # type: ignore[arg-type] - arguments that are not an object
    _modern(14, "fast__echo", {"text": "flag"}, progressToken=True),
    _modern(15, "fast__echo", {"text": "log"}, **{"io.modelcontextprotocol/logLevel": "debug"}),
]


def _config(tmp: Path, peers: Any, http: dict[str, str] | None = None) -> Path:
    """`fast` and `progress` on stdio, or at the Streamable HTTP URLs in `http`; `legacy` always on stdio."""
    servers: dict[str, Any] = {
        "fast": peers.server_entry(peers.fixture_server("fast")),
        "progress": peers.server_entry(peers.fixture_server("progress")),
        "legacy": peers.server_entry(peers.legacy_server("legacy_basic")),
    }
    servers.update({name: {"url": url} for name, url in (http or {}).items()})
    settings = {
        "log_level": "debug",
        "timeouts": {"connect": 30, "startup": 30},
        "store": {"path": str(tmp / "state.db")},
    }
    path = tmp / "servers.json"
    path.write_text(json.dumps({"mcpServers": servers, "switchyard": settings}), encoding="utf-8")
    return path


class _Wire:
    """Newline-delimited JSON-RPC over a process's pipes, every read bounded."""

    def __init__(self, process: Process) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        self._in = process.stdin
        self._out = process.stdout
        self._buffer = b""

    async def send(self, message: dict[str, Any]) -> None:
        await self._in.send(json.dumps(message).encode() + b"\n")

    async def receive(self) -> dict[str, Any]:
        with anyio.fail_after(STEP):
            while b"\n" not in self._buffer:
                self._buffer += await self._out.receive(1 << 20)
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)


async def _converse(config: Path, conversation: list[dict[str, Any]], *, lanes: bool, log: Path) -> list[Any]:
    """Send each message; after a request, record everything the gateway writes up to its answer."""
    env = {"SWITCHYARD_LANES": "on" if lanes else "off", "PATH": "/usr/bin:/bin"}
    argv = [sys.executable, "-m", "switchyard.cli.main", "serve", "-c", str(config)]
    transcript: list[Any] = []
    with log.open("w", encoding="utf-8") as errlog:
        process = await anyio.open_process(argv, env=env, stderr=errlog)
        try:
            wire = _Wire(process)
            for message in conversation:
                await wire.send(message)
                if "id" not in message:
                    continue
                while True:
                    seen = await wire.receive()
                    if str(seen.get("method", "")).endswith("/list_changed"):
                        continue  # servers coming up, at whatever moment they do: not the call's answer
                    transcript.append(_masked(seen))
                    if seen.get("method") == "elicitation/create" and "id" in seen:
                        await wire.send({"jsonrpc": "2.0", "id": seen["id"], "result": ELICIT_ANSWER})
                    elif seen.get("id") == message["id"] and "method" not in seen:
                        break
                answer = transcript[-1].get("result") or {}
                if MODERN in json.dumps(message) and answer.get("resultType") == "input_required":
                    retry = json.loads(json.dumps(message))
                    retry["id"] = f"{message['id']}-retry"
                    retry["params"]["inputResponses"] = dict.fromkeys(answer["inputRequests"], ELICIT_ANSWER)
                    retry["params"]["requestState"] = seen["result"]["requestState"]
                    await wire.send(retry)
                    while (seen := await wire.receive()).get("id") != retry["id"]:
                        transcript.append(_masked(seen))
                    transcript.append(_masked(seen))
        finally:
            if process.stdin is not None:
                await process.stdin.aclose()
            with anyio.move_on_after(STEP):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
    return transcript


def _answer(transcript: list[Any], ident: int | str) -> dict[str, Any]:
    return next(m for m in transcript if m.get("id") == ident and "method" not in m)


@pytest.mark.parametrize("upstreams", ["stdio", "http"])
@pytest.mark.parametrize(
    ("era", "conversation"),
    [("legacy", LEGACY_CONVERSATION), ("modern", MODERN_CONVERSATION)],
    ids=["legacy", "modern"],
)
async def test_the_lanes_answer_every_message_exactly_as_the_sdk_path_does(
    peers: Any, tmp_path: Path, era: str, conversation: list[dict[str, Any]], upstreams: str
) -> None:
    with contextlib.ExitStack() as stack:
        http = None
        if upstreams == "http":  # `fast` and `progress` on Streamable HTTP: the HTTP lane (http_lane.py)
            http = {name: stack.enter_context(peers.http_fixture_server(name)) for name in ("fast", "progress")}
        config = _config(tmp_path, peers, http)
        await _check_conversation(tmp_path, config, era, conversation, upstreams)


async def _check_conversation(
    tmp_path: Path, config: Path, era: str, conversation: list[dict[str, Any]], upstreams: str
) -> None:
    sdk = await _converse(config, conversation, lanes=False, log=tmp_path / "sdk.log")
    lanes = await _converse(config, conversation, lanes=True, log=tmp_path / "lanes.log")

    assert lanes == sdk
    # The transcripts are real answers, not two identical failures.
    assert _answer(lanes, 1)["result"]["content"][0]["text"] == "hi"
    assert _answer(lanes, 2)["result"]["structuredContent"] == {"result": 3}
    progress = [m for m in lanes if m.get("method") == "notifications/progress"]
    assert [p["params"]["progress"] for p in progress] == [1, 2, 3]
    # ...and the lanes served them: the SDK-path run never mentions a lane.
    lane_log = (tmp_path / "lanes.log").read_text(encoding="utf-8")
    assert "stdio lane: serving tools/call" in lane_log
    assert "stdio lane: plain tools/call params skip the kernel's validation and span" in lane_log
    assert f"server fast: forwarded requests take the {upstreams} lane".replace("http", "HTTP") in lane_log
    assert "lane" not in (tmp_path / "sdk.log").read_text(encoding="utf-8")
    if era == "legacy":
        assert "Ada" in json.dumps(_answer(lanes, 7)["result"])
        assert "nope__tool" in _answer(lanes, 4)["error"]["message"]
        assert _answer(lanes, 8)["error"]["code"] == -32602
        assert len(_answer(lanes, 10)["result"]["content"][0]["text"]) == 20000
        assert _answer(lanes, 11)["result"]["content"][0]["text"] == "traced"
        assert _answer(lanes, 12)["error"]["code"] == -32602
    else:
        assert _answer(lanes, 5)["error"]["code"] == -32602
        assert _answer(lanes, 6)["error"]["code"] == -32022
        assert "Ada" in json.dumps(_answer(lanes, "9-retry"))
        # Without the capability the upstream's question cannot be put to the client: no input_required.
        assert "cannot answer elicitation" in json.dumps(_answer(lanes, 10)), _answer(lanes, 10)
        assert _answer(lanes, 11)["result"]["content"][0]["text"] == "back"
        assert _answer(lanes, 12)["result"]["content"][0]["text"] == "traced"
        assert _answer(lanes, 13)["error"]["code"] == -32602
