"""The output guard on real tool calls and resource reads through the gateway, in both eras: annotate, redact,
block, per-server overrides, audit rows, and secrets kept out of results, logs and the audit log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from guard_helpers import MODES, SECRETS, ListSink, guarded, text_of
from mcp.shared.exceptions import MCPError

from switchyard.stages.guards import GUARD_META

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", MODES)
async def test_an_injected_email_is_wrapped_between_untrusted_data_markers(tmp_path: Path, mode: str) -> None:
    sink = ListSink()
    async with guarded(tmp_path, sink=sink, mode=mode) as (_, client):
        result = await client.call_tool("inbox__list_emails", {})
    blocks = [b.text for b in result.content if hasattr(b, "text")]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
    assert not result.is_error
    assert blocks[0].startswith("[Switchyard guard] UNTRUSTED DATA BEGINS")
    assert "SY10" in blocks[0]  # the rule ids that fired are named
    assert blocks[-1].startswith("[Switchyard guard] UNTRUSTED DATA ENDS")
    tag = blocks[0].split("(id ", 1)[1].split(")", 1)[0]
    assert f"(id {tag})" in blocks[-1]
    assert "collect.example.net" in blocks[1]  # the data itself is kept, only marked
    assert result.meta is not None
    assert result.meta[GUARD_META]["actions"] == ["annotated"]
    row = sink.last("inbox__list_emails")
    assert row.decision == "annotated"
    assert "SY1" in row.reason


@pytest.mark.parametrize("mode", MODES)
async def test_a_clean_result_passes_unchanged(tmp_path: Path, mode: str) -> None:
    sink = ListSink()
    async with guarded(tmp_path, sink=sink, mode=mode) as (_, client):
        result = await client.call_tool("files__read_file", {"path": "notes.txt"})
    assert text_of(result) == "Buy milk. Call the plumber on Tuesday."
    assert result.meta is None or GUARD_META not in result.meta
    assert sink.last("files__read_file").decision == "allowed"


@pytest.mark.parametrize("mode", MODES)
async def test_block_replaces_an_injected_result_by_an_error_saying_why(tmp_path: Path, mode: str) -> None:
    sink = ListSink()
    async with guarded(tmp_path, {"guards": {"injection": "block"}}, sink=sink, mode=mode) as (_, client):
        result = await client.call_tool("inbox__list_emails", {})
    assert result.is_error
    text = text_of(result)
    assert "withheld" in text
    assert "prompt injection" in text
    assert "collect.example.net" not in text
    assert sink.last("inbox__list_emails").decision == "blocked"


async def test_a_server_override_changes_the_action_for_that_server_only(tmp_path: Path) -> None:
    settings = {"guards": {"injection": "annotate", "servers": {"inbox": {"injection": "block"}}}}
    async with guarded(tmp_path, settings) as (_, client):
        inbox = await client.call_tool("inbox__list_emails", {})
    assert inbox.is_error


@pytest.mark.parametrize("mode", MODES)
async def test_secrets_are_redacted_in_text_and_structured_content(
    tmp_path: Path, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sink = ListSink()
    async with guarded(tmp_path, sink=sink, mode=mode) as (_, client):
        result = await client.call_tool("files__read_file", {"path": "secrets.env"})
    dumped = result.model_dump_json()
    assert "[REDACTED]" in text_of(result)
    assert "AWS_ACCESS_KEY_ID=" in text_of(result)  # the rest of the file is kept
    for secret in SECRETS:
        assert secret not in dumped
        assert secret not in caplog.text
        assert all(secret not in repr(row) for row in sink.rows)
    assert sink.last("files__read_file").decision == "redacted"


async def test_secret_block_withholds_the_result(tmp_path: Path) -> None:
    async with guarded(tmp_path, {"guards": {"secrets": "block"}}) as (_, client):
        result = await client.call_tool("files__read_file", {"path": "secrets.env"})
    assert result.is_error
    assert "secret" in text_of(result)
    assert all(secret not in result.model_dump_json() for secret in SECRETS)


@pytest.mark.parametrize("mode", MODES)
async def test_a_resource_read_is_guarded_too(tmp_path: Path, mode: str) -> None:
    async with guarded(tmp_path, mode=mode) as (_, client):
        injected = await client.read_resource("inbox://latest")
        secret = await client.read_resource("file:///secrets.env")
    first = injected.contents[0]
    assert hasattr(first, "text")
    assert first.text.startswith("[Switchyard guard] UNTRUSTED DATA BEGINS")  # pyright: ignore[reportAttributeAccessIssue]
    assert all(s not in secret.model_dump_json() for s in SECRETS)


async def test_a_blocked_resource_read_is_an_error_saying_why(tmp_path: Path) -> None:
    async with guarded(tmp_path, {"guards": {"injection": "block"}}) as (_, client):
        with pytest.raises(MCPError) as info:
            await client.read_resource("inbox://latest")
    assert "prompt injection" in info.value.message


async def test_the_guard_can_be_switched_off(tmp_path: Path) -> None:
    async with guarded(tmp_path, {"guards": {"enabled": False}}) as (_, client):
        result = await client.call_tool("files__read_file", {"path": "secrets.env"})
    assert SECRETS[0] in text_of(result)


@pytest.mark.parametrize("mode", MODES)
async def test_a_prompt_carrying_an_injection_is_marked_inside_its_message_and_a_clean_one_passes(
    tmp_path: Path, mode: str
) -> None:
    sink = ListSink()
    async with guarded(tmp_path, sink=sink, mode=mode) as (_, client):
        injected = await client.get_prompt("inbox__triage", {"index": "1"})
        clean = await client.get_prompt("inbox__triage", {"index": "0"})
    (message,) = injected.messages
    text = message.content.text  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType, reportUnknownVariableType]
    assert message.role == "user"
    assert text.startswith("[Switchyard guard] UNTRUSTED DATA BEGINS")
    assert "The prompt below contains text that looks like instructions" in text
    assert "collect.example.net" in text  # kept, only marked
    assert sink.last("inbox__triage").decision == "allowed"  # the clean one came last
    assert [r.decision for r in sink.rows if r.tool == "inbox__triage"] == ["annotated", "allowed"]
    (plain,) = clean.messages
    assert plain.content.text.startswith("Triage this e-mail from alice@example.com")  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]


async def test_block_refuses_an_injected_prompt_with_a_json_rpc_error(tmp_path: Path) -> None:
    async with guarded(tmp_path, {"guards": {"injection": "block"}}) as (_, client):
        with pytest.raises(MCPError) as info:
            await client.get_prompt("inbox__triage", {"index": "1"})
        clean = await client.get_prompt("inbox__triage", {"index": "0"})
    assert "withheld" in info.value.message
    assert "collect.example.net" not in info.value.message
    assert len(clean.messages) == 1
