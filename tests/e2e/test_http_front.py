"""The HTTP front (`switchyard serve --http`) as a real process on 127.0.0.1, with real upstreams behind it.

One gateway process (the `fast` fixture server and `mcp-server-time` behind it, a 64 KiB body limit) serves the
whole module. SDK clients in both modes list and call tools; raw requests (httpx2, which comes with `mcp`) send
every kind of bad input the spec names, and each gets its status and JSON-RPC code, after which the gateway
must still answer a normal call. Pure helpers (Host/Origin matching, the -32022 rewrite) are tested in-process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.types import TextContent

from switchyard.cli.main import main as cli_main
from switchyard.config import HttpFrontSettings
from switchyard.server.http import (
    SERVED_VERSIONS,
    MemoryEventStore,
    _matches,  # pyright: ignore[reportPrivateUsage]
    _with_served_versions,  # pyright: ignore[reportPrivateUsage]
    allowed_hosts,
    allowed_origins,
    is_loopback,
)

MODERN = "2026-07-28"
LEGACY = "2025-11-25"
STEP = 30.0
MAX_BODY = 64 * 1024
ACCEPT = "application/json, text/event-stream"
META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
LEGACY_INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def _switchyard_argv(config: Path, listen: str) -> list[str]:
    return [sys.executable, "-m", "switchyard.cli.main", "serve", "-c", str(config), "--http", listen]


@pytest.fixture(scope="module")
def gateway_url(peers: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`switchyard serve --http 127.0.0.1:<free port>` with `fast` and `time` behind it; yields the /mcp URL."""
    servers = {
        "fast": peers.server_entry(peers.fixture_server("fast")),
        "time": peers.server_entry(peers.time_server()),
    }
    config = tmp_path_factory.mktemp("http") / "servers.json"
    store = {"path": str(config.parent / "state.db")}
    # These tests exercise the transport; authentication has its own tests (tests/e2e/test_governance.py).
    doc = {
        "mcpServers": servers,
        "switchyard": {"http": {"max_body_bytes": MAX_BODY}, "store": store, "auth": {"mode": "none"}},
    }
    config.write_text(json.dumps(doc), encoding="utf-8")
    port = peers.free_port()
    with peers.running_http_server(_switchyard_argv(config, f"127.0.0.1:{port}"), port) as url:
        _wait_status(url.replace("/mcp", "/readyz"), 200)
        yield url


def _wait_status(url: str, status: int, timeout: float = STEP) -> httpx2.Response:
    """Poll `url` until it answers `status` (bounded)."""
    deadline = time.monotonic() + timeout
    last: httpx2.Response | None = None
    while time.monotonic() < deadline:
        try:
            last = httpx2.get(url, timeout=2.0)
            if last.status_code == status:
                return last
        except httpx2.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered {status} (last: {last.status_code if last else 'no answer'})")


def text_of(result: Any) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent), block
    return block.text


def post(url: str, body: Any, headers: dict[str, str] | None = None, *, raw: bytes | None = None) -> httpx2.Response:
    """One raw POST to the endpoint with the standard content headers plus `headers`."""
    all_headers = {"content-type": "application/json", "accept": ACCEPT, **(headers or {})}
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx2.post(url, content=content, headers=all_headers, timeout=STEP)


def modern(method: str, params: dict[str, Any] | None = None, rid: int = 1) -> dict[str, Any]:
    """A 2026-07-28 request body with the required `_meta`."""
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": {**(params or {}), "_meta": META}}


def modern_headers(method: str, name: str | None = None, version: str = MODERN) -> dict[str, str]:
    headers = {"MCP-Protocol-Version": version, "Mcp-Method": method}
    if name is not None:
        headers["Mcp-Name"] = name
    return headers


def assert_error(response: httpx2.Response, status: int, code: int | None) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    if code is None:
        return {}
    body = response.json()
    assert body["error"]["code"] == code, body
    return body


def assert_still_serving(url: str) -> None:
    """A normal modern call succeeds: the bad request before it did not hurt the gateway."""
    params = {"name": "fast__echo", "arguments": {"text": "still here"}}
    response = post(url, modern("tools/call", params), modern_headers("tools/call", "fast__echo"))
    assert response.status_code == 200, response.text
    assert response.json()["result"]["content"][0]["text"] == "still here"


# --- SDK clients, both eras --------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(("mode", "era"), [("auto", MODERN), ("legacy", LEGACY)])
async def test_sdk_client_lists_and_calls_tools_of_every_upstream_over_http(
    gateway_url: str, mode: str, era: str
) -> None:
    with anyio.fail_after(STEP):
        async with Client(gateway_url, mode=mode, read_timeout_seconds=STEP) as client:  # type: ignore[arg-type]
            assert client.protocol_version == era
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"fast__echo", "fast__add", "time__get_current_time"} <= names
            assert text_of(await client.call_tool("fast__echo", {"text": "over http"})) == "over http"
            assert text_of(await client.call_tool("fast__add", {"a": 2, "b": 3})) == "5"
            result = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
            assert "UTC" in text_of(result)
            prompt = await client.get_prompt("fast__greet", {"name": "Ada"})
            assert "Ada" in str(prompt.messages[0].content)


def test_legacy_session_advertises_list_changes_and_ends_with_delete(gateway_url: str) -> None:
    init = LEGACY_INIT
    opened = post(gateway_url, init, {"MCP-Protocol-Version": LEGACY})
    assert opened.status_code == 200, opened.text
    session = opened.headers["mcp-session-id"]
    # The first event is the empty priming event (resumability); the result follows.
    payload = next(line[5:] for line in opened.text.splitlines() if line.startswith("data:") and line[5:].strip())
    capabilities = json.loads(payload)["result"]["capabilities"]
    assert capabilities["tools"]["listChanged"] is True
    headers = {"MCP-Protocol-Version": LEGACY, "Mcp-Session-Id": session}
    deleted = httpx2.delete(gateway_url, headers=headers, timeout=STEP)
    assert deleted.status_code in (200, 204), deleted.text
    after = post(gateway_url, {"jsonrpc": "2.0", "id": 2, "method": "ping"}, headers)
    assert_error(after, 404, None)
    assert_still_serving(gateway_url)


def test_inspector_cli_lists_and_calls_tools_over_http(peers: Any, gateway_url: str) -> None:
    """The TypeScript SDK's client (`@modelcontextprotocol/inspector-cli`) against the HTTP endpoint."""
    cli = peers.inspector_cli()

    def run(*args: str) -> Any:
        done = subprocess.run(
            cli.command(gateway_url, "--transport", "http", *args),
            cwd=cli.cwd,
            capture_output=True,
            text=True,
            timeout=STEP * 2,
            check=True,
        )
        return json.loads(done.stdout)

    assert {"fast__echo", "time__get_current_time"} <= {t["name"] for t in run("--method", "tools/list")["tools"]}
    called = run("--method", "tools/call", "--tool-name", "fast__add", "--tool-arg", "a=2", "b=3")
    assert called["content"][0]["text"] == "5"


# --- probes ------------------------------------------------------------------------------------------------


def test_healthz_and_readyz_answer_200_when_every_server_is_up(gateway_url: str) -> None:
    base = gateway_url.removesuffix("/mcp")
    assert httpx2.get(f"{base}/healthz", timeout=STEP).json() == {"status": "ok"}
    ready = httpx2.get(f"{base}/readyz", timeout=STEP)
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "started": True, "servers": 2, "down": []}


def test_readyz_answers_503_naming_a_server_that_is_down(peers: Any, tmp_path: Path) -> None:
    servers = {
        "fast": peers.server_entry(peers.fixture_server("fast")),
        "broken": {"command": str(tmp_path / "no-such-program")},
    }
    config = tmp_path / "servers.json"
    settings = {"timeouts": {"connect": 5}, "store": {"path": str(tmp_path / "state.db")}, "auth": {"mode": "none"}}
    config.write_text(json.dumps({"mcpServers": servers, "switchyard": settings}), encoding="utf-8")
    port = peers.free_port()
    with peers.running_http_server(_switchyard_argv(config, f"127.0.0.1:{port}"), port) as url:
        base = url.removesuffix("/mcp")
        # Wait until the first attempts are over; then the broken server is listed and the gateway still serves.
        deadline = time.monotonic() + STEP
        while time.monotonic() < deadline:
            body = httpx2.get(f"{base}/readyz", timeout=STEP).json()
            if body["started"]:
                break
            time.sleep(0.1)
        response = httpx2.get(f"{base}/readyz", timeout=STEP)
        assert response.status_code == 503
        body = response.json()
        assert body["ready"] is False
        assert body["started"] is True
        assert [d["server"] for d in body["down"]] == ["broken"]
        assert httpx2.get(f"{base}/healthz", timeout=STEP).status_code == 200
        assert_still_serving(url)


# --- bad input ---------------------------------------------------------------------------------------------

HEADER_MISMATCH = -32020
UNSUPPORTED_VERSION = -32022


def test_mcp_method_header_that_disagrees_with_the_body_is_a_header_mismatch(gateway_url: str) -> None:
    response = post(gateway_url, modern("tools/list"), modern_headers("prompts/list"))
    assert_error(response, 400, HEADER_MISMATCH)
    assert_still_serving(gateway_url)


def test_missing_mcp_method_header_is_a_header_mismatch(gateway_url: str) -> None:
    response = post(gateway_url, modern("tools/list"), {"MCP-Protocol-Version": MODERN})
    assert_error(response, 400, HEADER_MISMATCH)
    assert_still_serving(gateway_url)


def test_mcp_name_header_that_disagrees_with_the_tool_is_a_header_mismatch(gateway_url: str) -> None:
    body = modern("tools/call", {"name": "fast__echo", "arguments": {"text": "x"}})
    assert_error(post(gateway_url, body, modern_headers("tools/call", "fast__add")), 400, HEADER_MISMATCH)
    assert_error(post(gateway_url, body, modern_headers("tools/call")), 400, HEADER_MISMATCH)
    assert_still_serving(gateway_url)


def test_version_header_that_disagrees_with_the_body_is_a_header_mismatch(gateway_url: str) -> None:
    response = post(gateway_url, modern("tools/list"), modern_headers("tools/list", version="2099-01-01"))
    assert_error(response, 400, HEADER_MISMATCH)
    assert_still_serving(gateway_url)


def test_unsupported_version_lists_every_version_switchyard_serves(gateway_url: str) -> None:
    body = modern("tools/list")
    body["params"]["_meta"] = {**META, "io.modelcontextprotocol/protocolVersion": "2099-01-01"}
    response = post(gateway_url, body, modern_headers("tools/list", version="2099-01-01"))
    error = assert_error(response, 400, UNSUPPORTED_VERSION)["error"]
    assert error["data"] == {"supported": list(SERVED_VERSIONS), "requested": "2099-01-01"}
    assert set(SERVED_VERSIONS) == {MODERN, LEGACY, "2025-06-18", "2025-03-26", "2024-11-05"}
    assert_still_serving(gateway_url)


def test_server_discover_names_the_same_versions_as_the_unsupported_version_error(gateway_url: str) -> None:
    response = post(gateway_url, modern("server/discover"), modern_headers("server/discover"))
    assert response.status_code == 200, response.text
    assert response.json()["result"]["supportedVersions"] == list(SERVED_VERSIONS)


def test_missing_meta_is_invalid_params(gateway_url: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    assert_error(post(gateway_url, body, modern_headers("tools/list")), 400, -32602)
    assert_still_serving(gateway_url)


def test_unknown_method_is_404_method_not_found(gateway_url: str) -> None:
    assert_error(post(gateway_url, modern("no/such"), modern_headers("no/such")), 404, -32601)
    assert_still_serving(gateway_url)


def test_unknown_session_id_is_404(gateway_url: str) -> None:
    headers = {"MCP-Protocol-Version": LEGACY, "Mcp-Session-Id": "no-such-session"}
    assert_error(post(gateway_url, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers), 404, None)
    assert_still_serving(gateway_url)


@pytest.mark.parametrize("version", [MODERN, LEGACY])
def test_oversized_body_is_413(gateway_url: str, version: str) -> None:
    huge = modern("tools/call", {"name": "fast__echo", "arguments": {"text": "x" * (MAX_BODY + 1)}})
    response = post(gateway_url, huge, modern_headers("tools/call", "fast__echo", version))
    assert_error(response, 413, -32600)
    assert_still_serving(gateway_url)


@pytest.mark.parametrize("version", [MODERN, LEGACY])
def test_malformed_json_is_a_parse_error(gateway_url: str, version: str) -> None:
    response = post(gateway_url, None, modern_headers("tools/list", version=version), raw=b'{"jsonrpc": ')
    assert_error(response, 400, -32700)
    assert_still_serving(gateway_url)


@pytest.mark.parametrize("version", [MODERN, LEGACY])
def test_batch_array_is_an_invalid_request(gateway_url: str, version: str) -> None:
    response = post(
        gateway_url, [modern("tools/list"), modern("tools/list", rid=2)], modern_headers("tools/list", version=version)
    )
    body = assert_error(response, 400, -32600)
    assert "Batch" in body["error"]["message"]
    assert_still_serving(gateway_url)


def test_get_and_delete_on_the_modern_wire_are_405(gateway_url: str) -> None:
    headers = {"MCP-Protocol-Version": MODERN, "accept": "text/event-stream"}
    assert httpx2.get(gateway_url, headers=headers, timeout=STEP).status_code == 405
    assert httpx2.delete(gateway_url, headers=headers, timeout=STEP).status_code == 405
    assert_still_serving(gateway_url)


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example.com"},
        {"Host": "evil.example.com"},
        {"Host": "evil.example.com", "Origin": "http://evil.example.com"},
        {"Origin": "null"},
    ],
)
def test_foreign_host_or_origin_is_refused_with_403_on_every_path(gateway_url: str, headers: dict[str, str]) -> None:
    response = post(gateway_url, modern("tools/list"), {**modern_headers("tools/list"), **headers})
    assert_error(response, 403, -32600)
    base = gateway_url.removesuffix("/mcp")
    assert httpx2.get(f"{base}/readyz", headers=headers, timeout=STEP).status_code == 403
    assert_still_serving(gateway_url)


def test_loopback_origin_and_host_names_are_accepted(gateway_url: str) -> None:
    port = gateway_url.split(":")[2].split("/", maxsplit=1)[0]
    for origin in (f"http://localhost:{port}", f"http://127.0.0.1:{port}", "http://[::1]:3000"):
        headers = {**modern_headers("tools/list"), "Origin": origin, "Host": f"localhost:{port}"}
        assert post(gateway_url, modern("tools/list"), headers).status_code == 200


# --- pure helpers and the CLI ------------------------------------------------------------------------------


def test_host_patterns_accept_the_loopback_names_with_any_port_and_nothing_else() -> None:
    settings = HttpFrontSettings(allowed_hosts=("gw.internal:8443",))
    hosts = allowed_hosts("127.0.0.1", 8765, settings)
    for ok in ("127.0.0.1:8765", "localhost:1", "LOCALHOST:80", "[::1]:9", "localhost", "gw.internal:8443"):
        assert _matches(ok, hosts), ok
    for bad in ("evil.com", "localhost.evil.com:80", "127.0.0.1:abc", "gw.internal:8444", "127.0.0.1:80@evil"):
        assert not _matches(bad, hosts), bad
    origins = allowed_origins("127.0.0.1", HttpFrontSettings())
    assert _matches("http://localhost:5173", origins)
    assert _matches("https://127.0.0.1", origins)
    assert not _matches("http://localhost.evil.com", origins)


def test_unsupported_version_rewrite_touches_only_minus_32022_errors() -> None:
    sdk = {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {"code": -32022, "message": "m", "data": {"supported": [MODERN], "requested": "x"}},
    }
    fixed = json.loads(_with_served_versions(json.dumps(sdk).encode()) or b"null")
    assert fixed["error"]["data"] == {"supported": list(SERVED_VERSIONS), "requested": "x"}
    assert fixed["id"] == 7
    other = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32020, "message": "m"}}
    assert _with_served_versions(json.dumps(other).encode()) is None
    assert _with_served_versions(b"not json") is None


def test_is_loopback_knows_the_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.0.2.1", "example.com", "::"))


def test_serve_refuses_a_non_loopback_address_without_allow_remote(tmp_path: Path) -> None:
    config = tmp_path / "servers.json"
    config.write_text(json.dumps({"mcpServers": {}}), encoding="utf-8")
    assert cli_main(["serve", "-c", str(config), "--http", "0.0.0.0:8765"]) == 2
    with pytest.raises(SystemExit):
        cli_main(["serve", "-c", str(config), "--http", "8765"])


def _message(n: int) -> Any:
    from mcp_types import JSONRPCNotification  # noqa: PLC0415

    return JSONRPCNotification(jsonrpc="2.0", method="notifications/message", params={"n": n})


@pytest.mark.anyio
async def test_event_store_replays_after_a_cursor_and_refuses_a_cursor_it_no_longer_covers() -> None:
    store = MemoryEventStore(per_stream=3, max_streams=2)
    priming = await store.store_event("s1", None)
    ids = [await store.store_event("s1", _message(n)) for n in range(2)]
    replayed: list[str | None] = []

    async def collect(event: Any) -> None:
        replayed.append(event.event_id)

    assert await store.replay_events_after(priming, collect) == "s1"
    assert replayed == ids
    replayed.clear()
    assert await store.replay_events_after(ids[0], collect) == "s1"
    assert replayed == ids[1:]
    # Two more events push the priming event and the first message out of the 3-event window.
    more = [await store.store_event("s1", _message(n)) for n in range(2, 4)]
    replayed.clear()
    assert await store.replay_events_after(priming, collect) is None
    assert await store.replay_events_after(ids[1], collect) == "s1"
    assert replayed == more
    # A third stream evicts the least recently written one; unknown cursors are refused.
    await store.store_event("s2", None)
    await store.store_event("s3", None)
    assert await store.replay_events_after(ids[1], collect) is None
    assert await store.replay_events_after("garbage", collect) is None


def test_legacy_response_streams_carry_event_ids_for_resumption(gateway_url: str) -> None:
    init = LEGACY_INIT
    opened = post(gateway_url, init, {"MCP-Protocol-Version": LEGACY})
    session = opened.headers["mcp-session-id"]
    headers = {"MCP-Protocol-Version": LEGACY, "Mcp-Session-Id": session}
    post(gateway_url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, headers)
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "fast__echo", "arguments": {"text": "a"}},
    }
    response = post(gateway_url, call, headers)
    assert response.status_code == 200, response.text
    assert any(line.startswith("id: ") for line in response.text.splitlines()), response.text
    httpx2.delete(gateway_url, headers=headers, timeout=STEP)


def _legacy_session(url: str) -> dict[str, str]:
    """A new legacy session (initialize + initialized); the headers that address it."""
    init = LEGACY_INIT
    opened = post(url, init, {"MCP-Protocol-Version": LEGACY})
    assert opened.status_code == 200, opened.text
    headers = {"MCP-Protocol-Version": LEGACY, "Mcp-Session-Id": opened.headers["mcp-session-id"]}
    post(url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, headers)
    return headers


def _resume(url: str, headers: dict[str, str], last_event_id: str, until: str) -> str:
    """GET with `Last-Event-ID`: what the replay sent, read until `until` shows up or the stream ends or
    pauses for 3 s (a replayed stream stays open for live events)."""
    got = ""
    all_headers = {"accept": "text/event-stream", **headers, "Last-Event-ID": last_event_id}
    try:
        with httpx2.stream("GET", url, headers=all_headers, timeout=httpx2.Timeout(STEP, read=3.0)) as response:
            assert response.status_code == 200, response.read()
            for chunk in response.iter_text():
                got += chunk
                if until in got:
                    break
    except httpx2.ReadTimeout:
        pass
    return got


def test_a_session_replays_its_own_events_and_never_another_sessions(gateway_url: str) -> None:
    """Every legacy session numbers its requests from 1, and the SDK names a stream by request id: the
    event log is kept per session, so a `Last-Event-ID` from another session replays nothing."""
    alice, bob = _legacy_session(gateway_url), _legacy_session(gateway_url)
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call"}
    call["params"] = {"name": "fast__echo", "arguments": {"text": "alice-only-7f3a"}}
    answered = post(gateway_url, call, alice)
    assert "alice-only-7f3a" in answered.text
    first = next(line[4:] for line in answered.text.splitlines() if line.startswith("id: "))
    assert alice["Mcp-Session-Id"] in first  # the event id names its session
    assert "alice-only-7f3a" in _resume(gateway_url, alice, first, "alice-only-7f3a")
    assert "alice-only-7f3a" not in _resume(gateway_url, bob, first, "alice-only-7f3a")
    # The same cursor with the session's own prefix swapped for Bob's is no key either: that stream is empty.
    swapped = first.replace(alice["Mcp-Session-Id"], bob["Mcp-Session-Id"])
    assert "alice-only-7f3a" not in _resume(gateway_url, bob, swapped, "alice-only-7f3a")
    for headers in (alice, bob):
        httpx2.delete(gateway_url, headers=headers, timeout=STEP)


def test_serve_warns_about_bare_principal_names_when_keys_and_tokens_are_both_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    auth = {
        "mode": "both",
        "resource_url": "https://mcp.example.com/mcp",
        "jwt": {"secret": "a-shared-secret-of-enough-length", "algorithms": ["HS256"], "issuer": "https://as.example"},
    }
    policy = {"groups": {"jwt:bob": ["ops"]}, "rules": [{"principals": ["alice", "api_key:carol"]}]}
    config = tmp_path / "servers.json"
    config.write_text(json.dumps({"mcpServers": {}, "switchyard": {"auth": auth, "policy": policy}}), "utf-8")
    assert cli_main(["serve", "-c", str(config), "--http", "0.0.0.0:8765"]) == 2  # refused before serving
    err = capsys.readouterr().err
    assert "refusing to bind 0.0.0.0" in err  # the configuration itself is valid
    assert "switchyard.policy names 'alice' without a kind" in err
    assert "carol" not in err
    assert "bob" not in err
    auth["mode"] = "api_key"
    config.write_text(json.dumps({"mcpServers": {}, "switchyard": {"auth": auth, "policy": policy}}), "utf-8")
    assert cli_main(["serve", "-c", str(config), "--http", "0.0.0.0:8765"]) == 2
    err = capsys.readouterr().err
    assert "refusing to bind 0.0.0.0" in err
    assert "without a kind" not in err
