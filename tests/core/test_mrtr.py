"""Input-required (MRTR) across the gateway: pass-through with sealed state for modern clients, the loop run
by the gateway for legacy clients, and refusal of forged, tampered, redirected or expired state."""

from __future__ import annotations

from typing import Annotated, Any

import mcp_types as types
import pytest
from mcp.client.session import ClientRequestContext
from mcp.server.mcpserver import AcceptedElicitation, Elicit, ElicitationResult, MCPServer, Resolve
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, Field

from switchyard.testing.harness import gateway_client

pytestmark = pytest.mark.anyio


class NameAnswer(BaseModel):
    name: str = Field(description="Your name")


def _ask() -> Elicit[NameAnswer]:
    return Elicit("What is your name?", NameAnswer)


def asker(server_name: str) -> MCPServer:
    server = MCPServer(server_name)

    @server.tool()
    def ask_name(answer: Annotated[ElicitationResult[NameAnswer], Resolve(_ask)]) -> str:
        """Ask for a name and greet it."""
        if isinstance(answer, AcceptedElicitation):
            return f"Hello, {answer.data.name}!"
        return f"elicitation {answer.action}"

    @server.tool()
    def ask_again(answer: Annotated[ElicitationResult[NameAnswer], Resolve(_ask)]) -> str:
        """Same question, another tool."""
        return "again"

    return server


async def answer_ada(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"name": "Ada"})


def servers() -> dict[str, Any]:
    return {"one": asker("one"), "two": asker("two")}


def text(result: Any) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_an_elicitation_reaches_the_client_and_the_answer_reaches_the_server(mode: str) -> None:
    async with gateway_client(servers(), mode=mode, elicitation_callback=answer_ada) as (_, client):
        result = await client.call_tool("one__ask_name", {})
    assert text(result) == "Hello, Ada!"


async def test_a_modern_client_sees_the_gateways_sealed_state_not_the_upstreams() -> None:
    async with gateway_client(servers(), elicitation_callback=answer_ada) as (_, client):
        first = await client.session.call_tool("one__ask_name", {}, allow_input_required=True)
    assert isinstance(first, types.InputRequiredResult)
    assert first.request_state is not None
    assert first.request_state.startswith("sy1.")
    assert first.input_requests is not None


async def _first_round(client: Any, tool: str) -> types.InputRequiredResult:
    first = await client.session.call_tool(tool, {}, allow_input_required=True)
    assert isinstance(first, types.InputRequiredResult)
    return first


def _answers(first: types.InputRequiredResult) -> dict[str, Any]:
    assert first.input_requests is not None
    return {key: {"action": "accept", "content": {"name": "Eve"}} for key in first.input_requests}


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda s: s[:-4] + ("AAAA" if not s.endswith("AAAA") else "BBBB"), "integrity"),
        (lambda s: "sy1.e30.AAAA", "integrity"),
        (lambda s: "not-a-sealed-state", "not one this gateway issued"),
    ],
)
async def test_a_forged_or_tampered_request_state_is_refused(tamper: Any, message: str) -> None:
    async with gateway_client(servers(), elicitation_callback=answer_ada) as (_, client):
        first = await _first_round(client, "one__ask_name")
        assert first.request_state is not None
        with pytest.raises(MCPError) as info:
            await client.session.call_tool(
                "one__ask_name",
                {},
                input_responses=_answers(first),
                request_state=tamper(first.request_state),
                allow_input_required=True,
            )
        ok = await client.call_tool("one__ask_name", {})
    assert info.value.code == -32602
    assert message in info.value.message
    assert text(ok) == "Hello, Ada!"  # the gateway keeps serving


@pytest.mark.parametrize("target", ["one__ask_again", "two__ask_name"])
async def test_a_retry_cannot_be_redirected_to_another_tool_or_server(target: str) -> None:
    async with gateway_client(servers(), elicitation_callback=answer_ada) as (_, client):
        first = await _first_round(client, "one__ask_name")
        with pytest.raises(MCPError) as info:
            await client.session.call_tool(
                target,
                {},
                input_responses=_answers(first),
                request_state=first.request_state,
                allow_input_required=True,
            )
    assert "another tool" in info.value.message


async def test_an_expired_request_state_is_refused() -> None:
    async with gateway_client(servers(), elicitation_callback=answer_ada) as (gateway, client):
        first = await _first_round(client, "one__ask_name")
        gateway.sealer._clock = lambda: 1e12  # pyright: ignore[reportPrivateUsage]  # far in the future
        with pytest.raises(MCPError) as info:
            await client.session.call_tool(
                "one__ask_name",
                {},
                input_responses=_answers(first),
                request_state=first.request_state,
                allow_input_required=True,
            )
    assert "expired" in info.value.message


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_an_upstream_never_asks_a_client_that_cannot_answer(mode: str) -> None:
    async with gateway_client(servers(), mode=mode) as (_, client):  # no elicitation callback: not declared
        with pytest.raises(MCPError) as info:
            await client.call_tool("one__ask_name", {})
    # The upstream saw this client's capabilities (not the gateway's) and refused with the spec's code.
    assert info.value.code == -32021
    assert "elicitation" in info.value.message
