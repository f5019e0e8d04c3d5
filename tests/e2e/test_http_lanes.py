"""The HTTP front's lanes (http_lane.py, modern_lane.py, session_lane.py) answer as the SDK's own path does.

The same fixed requests are POSTed to `switchyard serve --http` twice, with real upstream processes behind it
(`fast` and `progress` on mcp 2.3, `legacy_basic` on mcp 1.30): once with `SWITCHYARD_LANES=off` (every request
through the SDK's transports) and once with the lanes on (the default). Status, content type and the JSON of
every answer (or of every event of an SSE answer) are recorded; the two transcripts must be identical, except
for sealed `requestState` values, which are random per process. The gateway's debug log must show that the
lanes served the calls, so a lane that silently handed everything to the SDK would fail here.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from lane_messages import ELICIT_ANSWER, MODERN
from lane_messages import call as _call
from lane_messages import masked as _masked
from lane_messages import modern as _modern

LEGACY = "2025-11-25"
STEP = 30.0
CAPS = "io.modelcontextprotocol/clientCapabilities"


MODERN_REQUESTS: list[dict[str, Any]] = [
    _modern(1, "fast__echo", {"text": "hi"}),
    _modern(2, "fast__add", {"a": 1, "b": 2}),
    _modern(3, "fast__add", {"a": "x"}),  # the tool's own argument validation: an error result
    _modern(4, "nope__tool", {}),  # unknown tool
    _modern(5, "progress__count", {"steps": 3}, progressToken=5),  # not quiet: the SDK's streaming branch
    _modern("six", "legacy__echo", {"text": "é ünïcode ✓"}),  # a legacy upstream
    _modern(7, "legacy__ask_name", {}),  # becomes input_required with a sealed state, then retried
    _modern(8, "legacy__ask_name", {}, **{CAPS: {}}),  # no elicitation capability: no question is put
    _modern(9, "fast__echo", {"text": "x"}, **{CAPS: None}),  # null capabilities: -32602
    _modern(10, "fast__echo", {"text": "x"}, **{CAPS: {"elicitation": "yes"}}),  # mis-shaped: -32602
    _modern(11, "fast__echo", ["x"]),  # arguments that are not an object
    _modern(12, "fast__echo", {"text": "x" * 20000}),
    _modern(13, 5, {}),  # a name that is not a string
]

LEGACY_REQUESTS: list[dict[str, Any]] = [
    _call(1, "fast__echo", {"text": "hi"}),
    _call(2, "fast__add", {"a": 1, "b": 2}),
    _call(3, "fast__add", {"a": "x"}),
    _call(4, "nope__tool", {}),
    _call(5, "progress__count", {"steps": 3}, progressToken="p-5"),
    _call("six", "legacy__echo", {"text": "é ünïcode ✓"}),
    _call(7, "fast__echo", ["x"]),
    _call(8, "fast__echo", {"text": "x" * 20000}),
]


def _exact(text: str) -> Any:
    """The JSON text as sent (so escaping and number formatting count), or parsed and masked when it holds a
    sealed request state."""
    return _masked(json.loads(text)) if '"requestState"' in text else text


def _record(response: httpx2.Response) -> tuple[int, str, Any, list[tuple[str, str]]]:
    """Status, content type, the answer (or each SSE event's data; pings and priming dropped) and the headers
    (but the date, the session id, and the length of an answer holding a sealed state)."""
    kind = response.headers.get("content-type", "")
    skip = {"date", "mcp-session-id"} | ({"content-length"} if '"requestState"' in response.text else set())
    headers = [(k, v) for k, v in response.headers.multi_items() if k not in skip]
    if kind.startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        return response.status_code, kind, [_exact(d) for d in data if d], headers
    return response.status_code, kind, _exact(response.text) if response.content else None, headers


def _parsed(body: Any) -> Any:
    return json.loads(body) if isinstance(body, str) else body


def _headers(message: dict[str, Any], session: str | None) -> dict[str, str]:
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    if session is not None:
        headers["mcp-session-id"] = session
        headers["mcp-protocol-version"] = LEGACY
        return headers
    params = message.get("params") or {}
    headers["mcp-protocol-version"] = params.get("_meta", {}).get("io.modelcontextprotocol/protocolVersion", MODERN)
    headers["mcp-method"] = message["method"]
    if isinstance(params.get("name"), str):
        headers["mcp-name"] = params["name"]
    return headers


@contextlib.contextmanager
def _gateway(peers: Any, config: Path, *, lanes: bool, log: Path) -> Iterator[str]:
    """`switchyard serve --http` on a free port until every server is up; stopped by PID afterwards."""
    port = peers.free_port()
    argv = [sys.executable, "-m", "switchyard.cli.main", "serve", "-c", str(config), "--http", f"127.0.0.1:{port}"]
    env = {"SWITCHYARD_LANES": "on" if lanes else "off"}
    with peers.running_http_server(argv, port, env=env, log_path=log) as url:
        deadline = time.monotonic() + STEP
        while httpx2.get(url.replace("/mcp", "/readyz"), timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "the gateway's servers did not all come up"
            time.sleep(0.2)
        yield url


def _modern_transcript(url: str) -> list[Any]:
    transcript: list[Any] = []
    with httpx2.Client(timeout=STEP) as http:
        for message in MODERN_REQUESTS:
            response = http.post(url, json=message, headers=_headers(message, None))
            transcript.append(_record(response))
            result = (
                response.json().get("result", {}) if response.headers.get("content-type") == "application/json" else {}
            )
            if result.get("resultType") == "input_required":
                retry = json.loads(json.dumps(message))
                retry["id"] = f"{message['id']}-retry"
                retry["params"]["inputResponses"] = dict.fromkeys(result["inputRequests"], ELICIT_ANSWER)
                retry["params"]["requestState"] = result["requestState"]
                transcript.append(_record(http.post(url, json=retry, headers=_headers(retry, None))))
    return transcript


def _legacy_transcript(url: str) -> list[Any]:
    transcript: list[Any] = []
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "lane-test", "version": "1"}},
    }
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    with httpx2.Client(timeout=STEP) as http:
        opened = http.post(url, json=init, headers={**headers, "mcp-protocol-version": LEGACY})
        session = opened.headers["mcp-session-id"]
        notified = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert http.post(url, json=notified, headers=_headers(notified, session)).status_code == 202
        for message in LEGACY_REQUESTS:
            transcript.append(_record(http.post(url, json=message, headers=_headers(message, session))))
        http.delete(url, headers=_headers({}, session))
    return transcript


def _config(tmp: Path, peers: Any) -> Path:
    servers = {
        "fast": peers.server_entry(peers.fixture_server("fast")),
        "progress": peers.server_entry(peers.fixture_server("progress")),
        "legacy": peers.server_entry(peers.legacy_server("legacy_basic")),
    }
    settings = {
        "log_level": "debug",
        "auth": {"mode": "none"},
        "timeouts": {"connect": 30, "startup": 30},
        "store": {"path": str(tmp / "state.db")},
    }
    path = tmp / "servers.json"
    path.write_text(json.dumps({"mcpServers": servers, "switchyard": settings}), encoding="utf-8")
    return path


def _answer(transcript: list[Any], ident: int | str) -> Any:
    for _, _, body, _ in transcript:
        for message in [_parsed(b) for b in body] if isinstance(body, list) else [_parsed(body)]:
            if isinstance(message, dict) and message.get("id") == ident and "method" not in message:
                return message
    raise AssertionError(f"no answer to {ident!r}")


@pytest.mark.e2e
def test_the_http_lanes_answer_every_request_exactly_as_the_sdk_path_does(peers: Any, tmp_path: Path) -> None:
    config = _config(tmp_path, peers)
    runs: dict[bool, tuple[list[Any], list[Any]]] = {}
    for lanes in (False, True):
        with _gateway(peers, config, lanes=lanes, log=tmp_path / f"lanes-{lanes}.log") as url:
            runs[lanes] = (_modern_transcript(url), _legacy_transcript(url))
    assert runs[True][0] == runs[False][0]
    assert runs[True][1] == runs[False][1]
    modern, legacy = runs[True]
    # Real answers, not two identical failures.
    assert _answer(modern, 1)["result"]["content"][0]["text"] == "hi"
    assert _answer(modern, 2)["result"]["structuredContent"] == {"result": 3}
    assert "Ada" in json.dumps(_answer(modern, "7-retry"))
    assert _answer(modern, 9)["error"]["code"] == -32602
    assert _answer(modern, 10)["error"]["code"] == -32602
    assert len(_answer(modern, 12)["result"]["content"][0]["text"]) == 20000
    events = [_parsed(m) for m in modern[4][2]]
    assert [m["params"]["progress"] for m in events if m.get("method") == "notifications/progress"] == [1, 2, 3]
    assert _answer(legacy, "six")["result"]["content"][0]["text"] == "é ünïcode ✓"
    # ...and the lanes served them: the SDK-path run never mentions a lane.
    lane_log = (tmp_path / "lanes-True.log").read_text(encoding="utf-8")
    assert "HTTP modern lane: serving quiet tools/call" in lane_log
    assert "HTTP session lane" in lane_log
    assert "lane" not in (tmp_path / "lanes-False.log").read_text(encoding="utf-8").lower()
