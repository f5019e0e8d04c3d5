"""Governance end to end: real HTTP on 127.0.0.1 (uvicorn, the SDK's Streamable HTTP app behind
`AuthMiddleware`), real API keys and JWTs, a real SQLite audit log, and `kill -9` of a process writing audit
rows under load."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from starlette.applications import Starlette

from switchyard.cli.main import main as cli_main
from switchyard.config import AuthSettings, JwtSettings, parse_config
from switchyard.errors import RATE_LIMITED
from switchyard.server.auth import AuthMiddleware, metadata_url, protected_resource_routes
from switchyard.server.credentials import ApiKeyAuthenticator, EitherAuthenticator, JwtAuthenticator
from switchyard.server.mcp import FrontServer
from switchyard.stages import build_stages
from switchyard.store.audit import SqliteAuditStore
from switchyard.store.keys import SqliteKeyStore
from switchyard.testing.harness import memory_gateway
from switchyard.testing.peers import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "governance"))
from auth_helpers import ISSUER, rsa_pair, token
from governance_helpers import FakeClock, servers

pytestmark = pytest.mark.anyio

PRIVATE, PUBLIC_PEM = rsa_pair()
OTHER, _ = rsa_pair()
POLICY = {
    "groups": {"alice": ["dev"]},
    "default": "deny",
    "rules": [{"groups": ["dev"], "servers": {"allow": ["alpha"]}, "tools": {"deny": ["*admin*"]}}],
}


@dataclass
class Http:
    url: str
    keys: SqliteKeyStore
    audit: SqliteAuditStore
    clock: FakeClock
    seen_headers: list[dict[str, str]]


@asynccontextmanager
async def http_gateway(tmp_path: Path, limits: dict[str, Any] | None = None) -> AsyncGenerator[Http, None]:
    """The gateway (in-memory upstreams) behind auth on a real socket; API keys and JWTs both accepted."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    settings: dict[str, Any] = {"policy": POLICY, "limits": limits or {}, "audit": {"path": str(tmp_path / "a.db")}}
    config = parse_config({"mcpServers": {n: {"command": "x"} for n in ("alpha", "beta")}, "switchyard": settings})
    clock = FakeClock()
    built = build_stages(config, clock=clock)
    assert built.audit_store is not None
    built.audit_store.start()
    keys = SqliteKeyStore(tmp_path / "keys.db")
    jwt_settings = JwtSettings(public_key=PUBLIC_PEM, issuer=ISSUER)
    authenticator = EitherAuthenticator(ApiKeyAuthenticator(keys), JwtAuthenticator(jwt_settings, url))
    auth_settings = AuthSettings(mode="both", resource_url=url, authorization_servers=(ISSUER,), jwt=jwt_settings)
    seen: list[dict[str, str]] = []
    async with memory_gateway(servers(), settings=settings, stages=built.stages) as gateway:
        gateway.audit_store = built.audit_store  # the front records list requests there (started above)
        front = FrontServer(gateway)

        async def capture(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
            request: Any = ctx.request
            if request is not None:
                seen.append({k.lower(): v for k, v in request.headers.items()})
            return await call_next(ctx)

        front.server.middleware.append(capture)
        sdk = front.server.streamable_http_app(host="127.0.0.1")
        inner = Starlette(
            routes=[*protected_resource_routes(auth_settings, url), *sdk.routes],
            lifespan=lambda _: front.server.session_manager.run(),
        )
        app = AuthMiddleware(inner, authenticator, url)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve)
            with anyio.fail_after(10):
                while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
                    await anyio.sleep(0.01)
            try:
                yield Http(url, keys, built.audit_store, clock, seen)
            finally:
                server.should_exit = True
    built.audit_store.close()
    keys.close()


@asynccontextmanager
async def client(url: str, credential: str, mode: str = "auto") -> AsyncGenerator[Client, None]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {credential}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as c,  # type: ignore[arg-type]
    ):
        yield c


async def test_without_a_credential_the_gateway_answers_401_with_discoverable_metadata(tmp_path: Path) -> None:
    async with http_gateway(tmp_path) as gw, httpx2.AsyncClient(timeout=10) as http:
        refused = await http.post(gw.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        challenge = refused.headers["www-authenticate"]
        metadata = await http.get(metadata_url(gw.url))
    assert refused.status_code == 401
    assert challenge == f'Bearer resource_metadata="{metadata_url(gw.url)}"'
    assert metadata.json()["resource"] == gw.url
    assert metadata.json()["authorization_servers"] == [ISSUER]


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda url: token(PRIVATE, aud=url, exp=1_000_000, iat=999_000), id="expired"),
        pytest.param(lambda url: token(PRIVATE, aud="http://127.0.0.1:1/mcp"), id="wrong-audience"),
        pytest.param(lambda url: token(PRIVATE, aud=url, iss="https://evil.example"), id="wrong-issuer"),
        pytest.param(lambda url: token(OTHER, aud=url), id="forged"),
        pytest.param(lambda url: token(None, algorithm="none", aud=url), id="alg-none"),
        pytest.param(lambda url: "sy_000000000000_" + "A" * 43, id="unknown-key"),
    ],
)
async def test_bad_credentials_get_401_over_real_http(tmp_path: Path, bad: Any) -> None:
    async with http_gateway(tmp_path) as gw, httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(
            gw.url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Authorization": f"Bearer {bad(gw.url)}", "Accept": "application/json, text/event-stream"},
        )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_an_api_key_client_sees_only_its_tools_and_cannot_guess_hidden_ones(tmp_path: Path, mode: str) -> None:
    async with http_gateway(tmp_path) as gw:
        _, key = gw.keys.create("alice")
        async with client(gw.url, key, mode) as c:
            names = [t.name for t in (await c.list_tools()).tools]
            echoed = await c.call_tool("alpha__echo", {"text": "hi"})
            with pytest.raises(MCPError) as hidden:
                await c.call_tool("alpha__admin_reset", {})
            with pytest.raises(MCPError) as other_server:
                await c.call_tool("beta__lookup", {"key": "k"})
            with pytest.raises(MCPError) as absent:
                await c.call_tool("alpha__nonexistent", {})
        assert gw.audit.flush()
        rows = [r for r in gw.audit.query() if r.method == "tools/call"]
        lists = [r for r in gw.audit.query() if r.method == "tools/list"]
    assert names == ["alpha__echo", "alpha__wait"]
    assert lists  # ours, and any the SDK client makes itself (it lists to learn output schemas)
    assert {(r.principal, r.decision, r.reason) for r in lists} == {("alice", "allowed", "2 item(s) listed")}
    assert echoed.content[0].text == "hi"  # type: ignore[union-attr]
    assert (hidden.value.code, hidden.value.message, hidden.value.error.data) == (
        absent.value.code, "Unknown tool: alpha__admin_reset", absent.value.error.data
    )  # fmt: skip
    assert other_server.value.message == "Unknown tool: beta__lookup"
    assert absent.value.message == "Unknown tool: alpha__nonexistent"
    assert [(r.principal, r.principal_kind, r.tool, r.decision) for r in rows] == [
        ("alice", "api_key", "alpha__echo", "allowed"),
        ("alice", "api_key", "alpha__admin_reset", "denied"),
        ("alice", "api_key", "beta__lookup", "denied"),
        ("alice", "api_key", "alpha__nonexistent", "error"),
    ]
    assert all("authorization" not in h and "x-api-key" not in h for h in gw.seen_headers)
    assert gw.seen_headers


async def test_a_legacy_session_answers_only_the_principal_that_opened_it(tmp_path: Path) -> None:
    """A leaked `Mcp-Session-Id` is no credential: another principal's requests on it get 404, as for a
    session that does not exist (no calls, no stream, no DELETE), while its owner goes on using it."""
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call"}
    call["params"] = {"name": "alpha__echo", "arguments": {"text": "mine"}}
    base = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    base["MCP-Protocol-Version"] = "2025-11-25"
    async with http_gateway(tmp_path) as gw, httpx2.AsyncClient(timeout=30) as http:
        _, alice = gw.keys.create("alice")
        _, mallory = gw.keys.create("mallory")
        as_alice = {**base, "Authorization": f"Bearer {alice}"}
        opened = await http.post(gw.url, json=init, headers=as_alice)
        assert opened.status_code == 200, opened.text
        session = {"Mcp-Session-Id": opened.headers["mcp-session-id"]}
        await http.post(
            gw.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers={**as_alice, **session}
        )
        as_mallory = {**base, "Authorization": f"Bearer {mallory}", **session}
        assert (await http.post(gw.url, json=call, headers=as_mallory)).status_code == 404
        assert (await http.delete(gw.url, headers=as_mallory)).status_code == 404
        assert (await http.get(gw.url, headers={**as_mallory, "accept": "text/event-stream"})).status_code == 404
        mine = await http.post(gw.url, json=call, headers={**as_alice, **session})
        assert mine.status_code == 200, mine.text
        assert "mine" in mine.text
        assert (await http.delete(gw.url, headers={**as_alice, **session})).status_code == 200


async def test_a_resource_hidden_from_a_principal_stays_hidden_when_another_watches_it(tmp_path: Path) -> None:
    """The second subscriber of a URI is checked by the policy as the first was: mallory (who sees nothing)
    is told the resource does not exist, though alice is subscribed to it; on the modern wire the URI is left
    out of mallory's listen stream."""
    async with http_gateway(tmp_path) as gw:
        _, alice_key = gw.keys.create("alice")
        _, mallory_key = gw.keys.create("mallory")
        async with client(gw.url, alice_key, "legacy") as alice, client(gw.url, mallory_key, "legacy") as mallory:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MCPDeprecationWarning)  # resources/subscribe is legacy-era
                await alice.subscribe_resource("alpha://secret")
                with pytest.raises(MCPError) as refused:
                    await mallory.subscribe_resource("alpha://secret")
        async with (
            client(gw.url, mallory_key) as modern,
            modern.listen(resource_subscriptions=["alpha://secret"]) as sub,
        ):
            honoured = sub.honored
        assert gw.audit.flush()
        subscribes = [(r.principal, r.decision) for r in gw.audit.query() if r.method == "resources/subscribe"]
    assert refused.value.message == "Resource not found: alpha://secret"
    assert honoured.resource_subscriptions in (None, [])
    assert ("alice", "allowed") in subscribes
    assert ("mallory", "denied") in subscribes


async def test_a_jwt_client_is_its_subject_with_its_groups(tmp_path: Path) -> None:
    async with http_gateway(tmp_path) as gw:
        async with client(gw.url, token(PRIVATE, aud=gw.url, sub="bob", groups=["dev"])) as c:
            names = [t.name for t in (await c.list_tools()).tools]
            await c.call_tool("alpha__echo", {"text": "x"})
        assert gw.audit.flush()
        rows = gw.audit.query()
    assert names == ["alpha__echo", "alpha__wait"]
    assert {(r.principal, r.principal_kind) for r in rows} == {("bob", "jwt")}
    assert [r.method for r in rows if r.method != "tools/list"] == ["tools/call"]


async def test_rate_limits_are_exact_under_50_concurrent_http_clients_and_every_call_is_audited(
    tmp_path: Path,
) -> None:
    async with http_gateway(tmp_path, limits={"per_principal": {"rate": 1, "burst": 10}}) as gw:
        _, key = gw.keys.create("alice")
        outcomes: list[str] = []
        refusals: list[tuple[int, bool]] = []

        async def one(i: int) -> None:
            async with client(gw.url, key) as c:
                try:
                    await c.call_tool("alpha__echo", {"text": str(i)})
                    outcomes.append("ok")
                except MCPError as exc:
                    refusals.append((exc.code, exc.error.data["retryAfterSeconds"] > 0))
                    outcomes.append("limited")

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(one, i)
        assert gw.audit.flush()
        rows = gw.audit.query(tool="alpha__echo")
    assert outcomes.count("ok") == 10
    assert outcomes.count("limited") == 40
    assert refusals == [(RATE_LIMITED, True)] * 40
    assert len(rows) == 50
    assert [r.decision for r in rows].count("rate_limited") == 40


def test_kill_9_during_load_leaves_a_readable_database_with_every_acknowledged_row(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    writer = Path(__file__).with_name("audit_writer.py")
    proc = subprocess.Popen(
        [sys.executable, str(writer), str(db)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    acknowledged: list[str] = []
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while len(acknowledged) < 30_000 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acknowledged.append(line.strip())
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: batches are being written as we kill
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
    assert len(acknowledged) >= 30_000
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = {row[0] for row in conn.execute("SELECT event FROM audit")}
    conn.close()
    missing = [event for event in acknowledged if event not in stored]
    assert missing == []
    assert json.loads(SqliteAuditStore(db).query(limit=1)[0].arguments or "{}")["pad"]


def test_kill_9_of_a_gateway_under_load_in_durable_mode_loses_no_answered_call(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    script = Path(__file__).with_name("audited_gateway.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(db)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    answered: list[str] = []
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 90
        while len(answered) < 1_500 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            answered.append(line.strip())
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
    assert len(answered) >= 1_500
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        logged = {json.loads(row[0])["text"] for row in conn.execute("SELECT arguments FROM audit")}
    conn.close()
    assert [call for call in answered if call not in logged] == []


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_switchyard_serve_http_with_keys_policy_limits_and_the_audit_cli(
    peers: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    """The real `switchyard serve --http` process, configured by file; keys made with the CLI. Its calls take
    the HTTP front's lanes (the modern lane in `auto` mode, the session lane in `legacy`)."""
    store = tmp_path / "state.db"
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    settings = {
        "store": {"path": str(store)},
        "auth": {"mode": "api_key", "authorization_servers": [ISSUER]},
        "policy": {"default": "deny", "rules": [{"groups": ["dev"], "tools": {"deny": ["fast__add"]}}]},
        "limits": {"per_principal_tool": {"rate": 0.001, "burst": 3}},
    }
    config = tmp_path / "servers.json"
    doc = {"mcpServers": {"fast": peers.server_entry(peers.fixture_server("fast"))}, "switchyard": settings}
    config.write_text(json.dumps(doc), encoding="utf-8")
    assert cli_main(["keys", "create", "alice", "--group", "dev", "--store", str(store)]) == 0
    alice = capsys.readouterr().out.strip()
    assert cli_main(["keys", "create", "mallory", "--store", str(store)]) == 0
    mallory = capsys.readouterr().out.strip()
    argv = [sys.executable, "-m", "switchyard.cli.main", "serve", "-c", str(config), "--http", f"127.0.0.1:{port}"]

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with httpx2.AsyncClient(timeout=30) as http:
            refused = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            out["refused"] = (refused.status_code, refused.headers.get("www-authenticate"))
            out["metadata"] = (await http.get(metadata_url(url))).json()
        async with client(url, alice, mode) as c:
            out["alice_tools"] = sorted(t.name for t in (await c.list_tools()).tools)
            with pytest.raises(MCPError) as hidden:
                await c.call_tool("fast__add", {"a": 1, "b": 2})
            out["hidden"] = hidden.value.message
            results = []
            for i in range(5):
                try:
                    r = await c.call_tool("fast__echo", {"text": f"n{i}"})
                    results.append(r.content[0].text)  # type: ignore[union-attr]
                except MCPError as exc:
                    results.append(exc.code)
            out["echoes"] = results
        async with client(url, mallory, mode) as c:
            out["mallory_tools"] = [t.name for t in (await c.list_tools()).tools]
        return out

    with peers.running_http_server(argv, port) as served:
        assert served == url
        seen = anyio.run(scenario)
    assert seen["refused"] == (401, f'Bearer resource_metadata="{metadata_url(url)}"')
    assert seen["metadata"]["resource"] == url
    assert seen["metadata"]["authorization_servers"] == [ISSUER]
    assert "fast__add" not in seen["alice_tools"]
    assert "fast__echo" in seen["alice_tools"]
    assert seen["hidden"] == "Unknown tool: fast__add"
    assert seen["echoes"] == ["n0", "n1", "n2", RATE_LIMITED, RATE_LIMITED]
    assert seen["mallory_tools"] == []
    assert cli_main(["audit", "-c", str(config), "--tool", "fast__*", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    calls = [(r["principal"], r["tool"], r["decision"]) for r in rows if r["method"] == "tools/call"]
    assert (
        calls
        == [("alice", "fast__add", "denied")]
        + [("alice", "fast__echo", "allowed")] * 3
        + [("alice", "fast__echo", "rate_limited")] * 2
    )
    assert cli_main(["audit", "-c", str(config), "--principal", "anonymous", "--json"]) == 0
    refusals = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["decision"], r["method"]) for r in refusals] == [("denied", "http POST /mcp")]
