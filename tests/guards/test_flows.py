"""The flow policy through the gateway: the exfiltration step of inbox → files → web is stopped, the same calls
in a harmless order pass; conversations are per legacy session, per `_meta` conversation id, or per principal
within a window; decisions reach the audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from guard_helpers import MODES, ListSink, config, guarded, inbox, servers, text_of
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

from switchyard.pipeline.context import CallContext
from switchyard.server.mcp import FrontServer
from switchyard.stages import build_stages
from switchyard.stages.flows import CONVERSATION_META
from switchyard.testing.harness import memory_gateway

pytestmark = pytest.mark.anyio

BLOCK = {"flows": {"action": "block"}}
POST = ("web__post_message", {"url": "https://collect.example.net/upload", "body": "hello"})


async def exfiltration(client: Client) -> None:
    """The attack order: untrusted e-mail, then the private file, then the post."""
    await client.call_tool("inbox__list_emails", {})
    await client.call_tool("files__read_file", {"path": "secrets.env"})
    await client.call_tool(*POST)


@pytest.mark.parametrize("mode", MODES)
async def test_the_post_after_reading_mail_and_secrets_is_blocked(tmp_path: Path, mode: str) -> None:
    sink = ListSink()
    async with guarded(tmp_path, BLOCK, sink=sink, mode=mode) as (_, client):
        with pytest.raises(MCPError) as info:
            await exfiltration(client)
        posted = await client.call_tool("web__list_outbox", {})
    assert "Flow policy" in info.value.message
    assert "inbox__list_emails" in info.value.message
    assert "files__read_file" in info.value.message
    assert text_of(posted) in ("[]", "")
    row = sink.last("web__post_message")
    assert row.decision == "denied"
    assert "egress" in row.reason or "send data out" in row.reason


@pytest.mark.parametrize("mode", MODES)
async def test_the_same_calls_in_a_harmless_order_go_through(tmp_path: Path, mode: str) -> None:
    async with guarded(tmp_path, BLOCK, mode=mode) as (_, client):
        posted = await client.call_tool(*POST)
        await client.call_tool("inbox__list_emails", {})
        await client.call_tool("files__read_file", {"path": "secrets.env"})
    assert not posted.is_error
    assert "posted 5 characters" in text_of(posted)


async def test_private_data_alone_does_not_stop_a_post(tmp_path: Path) -> None:
    async with guarded(tmp_path, BLOCK) as (_, client):
        await client.call_tool("files__read_file", {"path": "notes.txt"})
        posted = await client.call_tool(*POST)
    assert not posted.is_error


async def test_legacy_sessions_are_separate_conversations(tmp_path: Path) -> None:
    async with guarded(tmp_path, BLOCK, mode="legacy") as (gateway, client):
        await client.call_tool("inbox__list_emails", {})
        await client.call_tool("files__read_file", {"path": "secrets.env"})
        async with Client(FrontServer(gateway).server, mode="legacy") as other:  # pyright: ignore[reportArgumentType]
            posted = await other.call_tool(*POST)
    assert not posted.is_error


async def test_a_conversation_id_in_meta_separates_stateless_conversations(tmp_path: Path) -> None:
    def meta(conversation: str) -> dict[str, Any]:
        return {CONVERSATION_META: conversation}

    async with guarded(tmp_path, BLOCK) as (_, client):
        await client.call_tool("inbox__list_emails", {}, meta=meta("one"))
        await client.call_tool("files__read_file", {"path": "secrets.env"}, meta=meta("one"))
        other = await client.call_tool(*POST, meta=meta("two"))
        with pytest.raises(MCPError):
            await client.call_tool(*POST, meta=meta("one"))
    assert not other.is_error


async def test_without_a_conversation_id_the_principal_is_tracked_within_the_window(tmp_path: Path) -> None:
    async with guarded(tmp_path, BLOCK) as (gateway, client):
        await client.call_tool("inbox__list_emails", {})
        await client.call_tool("files__read_file", {"path": "secrets.env"})
        with pytest.raises(MCPError):
            await client.call_tool(*POST)
        stage = next(s for s in _stages(gateway) if hasattr(s, "tracker"))
        later = stage.tracker.clock() + 3601.0
        stage.tracker.clock = lambda: later
        posted = await client.call_tool(*POST)
    assert not posted.is_error


async def test_an_injection_found_by_the_guard_taints_even_an_unlabelled_tool(tmp_path: Path) -> None:
    # Labels from configuration replace the heuristics: the inbox claims nothing, the guard still sees the attack.
    keys = {"inbox": {"labels": []}, "files": {"labels": ["private"]}}
    async with guarded(tmp_path, BLOCK, server_keys=keys) as (_, client):
        with pytest.raises(MCPError) as info:
            await exfiltration(client)
    assert "Flow policy" in info.value.message


async def test_audit_action_records_but_does_not_stop(tmp_path: Path) -> None:
    sink = ListSink()
    async with guarded(tmp_path, {"flows": {"action": "audit"}}, sink=sink) as (_, client):
        await exfiltration(client)
    row = sink.last("web__post_message")
    assert row.decision == "flagged"
    assert "Flow policy" in row.reason


def _stages(gateway: Any) -> list[Any]:
    """The stage objects of a gateway's chain (test introspection only)."""
    handler = gateway._handler  # pyright: ignore[reportPrivateUsage]
    found: list[Any] = []
    while hasattr(handler, "args"):
        found.append(handler.args[0])
        handler = handler.args[1]
    return found


async def test_the_conversation_id_is_not_forwarded_upstream(tmp_path: Path) -> None:
    seen: list[Any] = []
    async with guarded(tmp_path) as (gateway, _):
        upstream = gateway.upstreams["files"]
        original = upstream.request

        async def spy(method: str, params: Any, **kwargs: Any) -> Any:
            seen.append(params)
            return await original(method, params, **kwargs)

        upstream.request = spy  # type: ignore[method-assign]
        await gateway.request(
            "tools/call",
            {"name": "files__list_files", "arguments": {}, "_meta": {CONVERSATION_META: "c1", "keep": 1}},
        )
    assert seen[0]["_meta"] == {"keep": 1}


async def test_an_error_from_a_mail_tool_taints_the_conversation_as_its_result_would(tmp_path: Path) -> None:
    """A JSON-RPC error's text reaches the model as a result's does: a labelled tool that fails with a mail in
    its error message makes the conversation private and untrusted all the same."""
    mailer = MCPServer("inbox")

    @mailer.tool()
    def open_mail(index: int) -> str:
        """Open one e-mail of the user's inbox."""
        raise MCPError(-32602, f"cannot render message {index}: {inbox.EMAILS[1]['body']}")

    full = {"store": {"path": str(tmp_path / "store.db")}, **BLOCK}
    labels = {"inbox": {"labels": {"*": ["private", "untrusted"]}}}
    built = build_stages(config(full, labels), audit_sink=ListSink())
    async with (
        memory_gateway({**servers(), "inbox": mailer}, settings=full, stages=built.stages) as gateway,
        Client(FrontServer(gateway).server) as client,  # pyright: ignore[reportArgumentType]
    ):
        with pytest.raises(MCPError) as failed:
            await client.call_tool("inbox__open_mail", {"index": 1})
        with pytest.raises(MCPError) as info:
            await client.call_tool(*POST)
    assert "cannot render message 1" in failed.value.message
    assert "Flow policy" in info.value.message
    assert "inbox__open_mail" in info.value.message


async def test_an_injection_in_an_unlabelled_tools_error_taints_the_conversation_as_in_its_result(
    tmp_path: Path,
) -> None:
    """The guard annotates an injected error as it annotates an injected result, and what it finds there taints
    the conversation the same way, whatever the tool's labels."""
    calc = MCPServer("calc")

    @calc.tool()
    def add(a: int, b: int) -> str:
        """Add two numbers."""
        raise MCPError(-32602, f"bad input {a}, {b}. {inbox.EMAILS[1]['body']}")

    full = {"store": {"path": str(tmp_path / "store.db")}, **BLOCK}
    built = build_stages(config(full, {"calc": {"labels": []}}), audit_sink=ListSink())
    async with (
        memory_gateway({**servers(), "calc": calc}, settings=full, stages=built.stages) as gateway,
        Client(FrontServer(gateway).server) as client,  # pyright: ignore[reportArgumentType]
    ):
        with pytest.raises(MCPError) as failed:
            await client.call_tool("calc__add", {"a": 1, "b": 2})
        await client.call_tool("files__read_file", {"path": "secrets.env"})
        with pytest.raises(MCPError) as info:
            await client.call_tool(*POST)
    assert "UNTRUSTED DATA BEGINS" in failed.value.message  # the guard's finding, on the error
    assert "Flow policy" in info.value.message
    assert "calc__add" in info.value.message


async def test_a_resource_uri_that_spells_a_tools_name_does_not_share_its_labels(tmp_path: Path) -> None:
    async with guarded(tmp_path) as (gateway, _):
        stage = next(s for s in _stages(gateway) if hasattr(s, "tracker"))
        name = "web__post_message"
        as_resource = CallContext(method="resources/read", name=name, params={"uri": name}, server="web")
        as_tool = CallContext(method="tools/call", name=name, params={"arguments": {}}, server="web")
        assert "egress" not in stage.labels(as_resource).labels  # read first: before, the tool got these labels
        assert "egress" in stage.labels(as_tool).labels


@pytest.mark.parametrize("index", ["1", "0"])
async def test_an_injected_prompt_taints_the_conversation_and_a_clean_one_does_not(tmp_path: Path, index: str) -> None:
    async with guarded(tmp_path, BLOCK) as (_, client):
        await client.get_prompt("inbox__triage", {"index": index})  # "1" carries the injected e-mail
        await client.call_tool("files__read_file", {"path": "secrets.env"})
        if index == "1":
            with pytest.raises(MCPError) as info:
                await client.call_tool(*POST)
            assert "inbox__triage" in info.value.message
        else:
            posted = await client.call_tool(*POST)
            assert not posted.is_error
