"""Approvals through the gateway: `approval: required` and flow escalations ask the human by elicitation
(legacy sessions) or by an input-required result (2026-07-28), with SDK clients answering yes and no; a client
that cannot be asked is refused with the `switchyard approve-call` command, which another process runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from guard_helpers import MODES, ListSink, answering, guarded, text_of
from mcp import Client
from mcp.shared.exceptions import MCPError

from switchyard.cli.main import main
from switchyard.errors import SwitchyardError
from switchyard.identity import LOCAL, Principal
from switchyard.server.mcp import FrontServer
from switchyard.stages.approval import APPROVAL_KEY

pytestmark = pytest.mark.anyio

REQUIRED = {"web": {"approval": {"post_*": "required"}}}
POST = ("web__post_message", {"url": "https://example.org/forum", "body": "hello"})


@pytest.mark.parametrize("mode", MODES)
async def test_a_yes_lets_a_call_that_requires_approval_run(tmp_path: Path, mode: str) -> None:
    asked: list[str] = []
    sink = ListSink()
    cb = answering(True, asked)
    async with guarded(tmp_path, server_keys=REQUIRED, sink=sink, mode=mode, elicitation_callback=cb) as (_, client):
        fetched = await client.call_tool("web__fetch_page", {"url": "https://example.org"})
        posted = await client.call_tool(*POST)
    assert not fetched.is_error
    assert not posted.is_error
    assert "posted 5 characters" in text_of(posted)
    assert len(asked) == 1  # only the tool that requires approval asked
    assert "web__post_message" in asked[0]
    assert "requires approval" in asked[0]
    assert sink.last("web__post_message").decision == "approved"


@pytest.mark.parametrize("mode", MODES)
async def test_a_no_refuses_the_call(tmp_path: Path, mode: str) -> None:
    cb = answering(False)
    async with guarded(tmp_path, server_keys=REQUIRED, mode=mode, elicitation_callback=cb) as (_, client):
        with pytest.raises(MCPError) as info:
            await client.call_tool(*POST)
        outbox = await client.call_tool("web__list_outbox", {})
    assert "declined" in info.value.message
    assert "example.org/forum" not in text_of(outbox)


@pytest.mark.parametrize("mode", MODES)
async def test_a_flow_escalation_asks_and_a_yes_lets_the_post_through(tmp_path: Path, mode: str) -> None:
    asked: list[str] = []
    async with guarded(tmp_path, mode=mode, elicitation_callback=answering(True, asked)) as (_, client):
        await client.call_tool("inbox__list_emails", {})
        await client.call_tool("files__read_file", {"path": "secrets.env"})
        posted = await client.call_tool(*POST)
    assert not posted.is_error
    assert len(asked) == 1
    assert "Flow policy" in asked[0]


async def test_the_modern_question_is_an_input_required_result_with_sealed_state(tmp_path: Path) -> None:
    async with guarded(tmp_path, server_keys=REQUIRED, elicitation_callback=answering(True)) as (_, client):
        first = await client.session.call_tool(*POST, allow_input_required=True)
        assert isinstance(first, types.InputRequiredResult)
        assert first.input_requests is not None
        assert list(first.input_requests) == [APPROVAL_KEY]
        assert first.request_state is not None
        assert first.request_state.startswith("sy1.")
        yes = {APPROVAL_KEY: {"action": "accept", "content": {"approve": True}}}
        # The sealed state names this very call: other arguments cannot ride on it.
        with pytest.raises(MCPError) as info:
            await client.session.call_tool(
                POST[0],
                {**POST[1], "body": "something else"},
                input_responses=yes,
                request_state=first.request_state,
                allow_input_required=True,
            )
        done = await client.session.call_tool(
            *POST, input_responses=yes, request_state=first.request_state, allow_input_required=True
        )
    assert "another call" in info.value.message
    assert isinstance(done, types.CallToolResult)
    assert not done.is_error


def _approval_id(message: str) -> str:
    return message.split("switchyard approve-call ", 1)[1].split("`", 1)[0]


async def test_an_operators_denial_stands_against_a_later_yes_from_the_client(tmp_path: Path) -> None:
    """A client holding the approval question (sealed state) from before the operator ran `--deny` cannot
    turn the denial into an approval by answering yes."""
    yes = {APPROVAL_KEY: {"action": "accept", "content": {"approve": True}}}
    async with guarded(tmp_path, server_keys=REQUIRED, elicitation_callback=answering(True)) as (gateway, asking):
        async with Client(FrontServer(gateway).server) as mute:  # pyright: ignore[reportArgumentType] - cannot be asked
            with pytest.raises(MCPError) as held:
                await mute.call_tool(*POST)
        ident = _approval_id(held.value.message)
        first = await asking.session.call_tool(*POST, allow_input_required=True)
        assert isinstance(first, types.InputRequiredResult)
        assert main(["approve-call", ident, "--deny", "--store", str(tmp_path / "store.db")]) == 0
        with pytest.raises(MCPError) as refused:
            await asking.session.call_tool(
                *POST, input_responses=yes, request_state=first.request_state, allow_input_required=True
            )
        outbox = await asking.call_tool("web__list_outbox", {})
    assert "denied by cli:" in refused.value.message
    assert "example.org/forum" not in text_of(outbox)


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_that_cannot_be_asked_gets_the_command_and_the_retry_passes(tmp_path: Path, mode: str) -> None:
    async with guarded(tmp_path, server_keys=REQUIRED, mode=mode) as (_, client):
        with pytest.raises(MCPError) as info:
            await client.call_tool(*POST)
        ident = _approval_id(info.value.message)
        assert main(["approve-call", "--list", "--json", "--store", str(tmp_path / "store.db")]) == 0
        assert main(["approve-call", ident, "--store", str(tmp_path / "store.db")]) == 0
        posted = await client.call_tool(*POST)
        with pytest.raises(MCPError):  # the approval is for that call only
            await client.call_tool(POST[0], {**POST[1], "body": "other"})
    assert not posted.is_error


async def test_a_denial_from_the_cli_refuses_the_retry(tmp_path: Path) -> None:
    async with guarded(tmp_path, server_keys=REQUIRED) as (_, client):
        with pytest.raises(MCPError) as info:
            await client.call_tool(*POST)
        ident = _approval_id(info.value.message)
        assert main(["approve-call", ident, "--deny", "--store", str(tmp_path / "store.db")]) == 0
        with pytest.raises(MCPError) as again:
            await client.call_tool(*POST)
    assert "denied" in again.value.message


async def test_approving_an_unknown_id_fails(tmp_path: Path, capsys: Any) -> None:
    # Exit 1: the command ran and found nothing to decide (2 is for usage and configuration errors).
    assert main(["approve-call", "0123456789abcdef", "--store", str(tmp_path / "store.db")]) == 1
    assert "no pending call" in capsys.readouterr().err


async def test_a_state_sealed_for_the_upstream_never_passes_for_an_approval(tmp_path: Path) -> None:
    async with guarded(tmp_path, server_keys=REQUIRED, elicitation_callback=answering(True)) as (gateway, client):
        first = await client.session.call_tool(*POST, allow_input_required=True)
        assert isinstance(first, types.InputRequiredResult)
        assert first.request_state is not None
        ident = gateway.sealer.open(first.request_state, principal=str(LOCAL)).state["approval"]
        # What the gateway would seal around an upstream's own state shaped like an approval.
        forged = gateway.sealer.seal(server="web", item=POST[0], principal=str(LOCAL), state={"approval": ident})
        again = await client.session.call_tool(
            *POST,
            input_responses={APPROVAL_KEY: {"action": "accept", "content": {"approve": True}}},
            request_state=forged,
            allow_input_required=True,
        )
    assert isinstance(again, types.InputRequiredResult)  # asked again, not approved


@pytest.mark.parametrize("mode", MODES)
async def test_a_call_through_the_call_tool_meta_tool_can_be_approved(tmp_path: Path, mode: str) -> None:
    """In `search` exposure the approval question comes back through `call_tool`; the answer (on the modern
    wire, a retry of `call_tool` with `requestState` and `inputResponses`) reaches the inner call."""
    settings = {"exposure": "search", "retrieval": {"retriever": "bm25"}}
    asked: list[str] = []
    cb = answering(True, asked)
    async with guarded(tmp_path, settings, server_keys=REQUIRED, mode=mode, elicitation_callback=cb) as (_, client):
        posted = await client.call_tool("call_tool", {"name": POST[0], "arguments": POST[1]})
        outbox = await client.call_tool("call_tool", {"name": "web__list_outbox", "arguments": {}})
    assert not posted.is_error, text_of(posted)
    assert "posted 5 characters" in text_of(posted)
    assert len(asked) == 1
    assert "example.org/forum" in text_of(outbox)


async def test_a_yes_for_an_api_keys_call_is_not_one_for_a_jwt_of_the_same_name(tmp_path: Path) -> None:
    key, token = Principal("alice", "api_key"), Principal("alice", "jwt")
    params = {"name": POST[0], "arguments": POST[1]}
    async with guarded(tmp_path, server_keys=REQUIRED) as (gateway, _):
        with pytest.raises(SwitchyardError) as held:
            await gateway.request("tools/call", params, principal=key)
        ident = _approval_id(str(held.value))
        assert main(["approve-call", ident, "--store", str(tmp_path / "store.db")]) == 0
        approved = await gateway.request("tools/call", params, principal=key)
        with pytest.raises(SwitchyardError) as other:
            await gateway.request("tools/call", params, principal=token)
    assert "posted 5 characters" in approved["content"][0]["text"]
    assert _approval_id(str(other.value)) != ident  # held again, as its own call
