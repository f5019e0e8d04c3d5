"""Input bridging with a legacy (mcp 1.30) upstream that pushes `elicitation/create` mid-call: to a legacy
client the request is pushed on; for a modern client the call is parked and the question becomes an
`input_required` result, resumed when the client retries (issue 3, combination "modern client, legacy upstream")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.shared.exceptions import MCPError

from switchyard.config import parse_config
from switchyard.gateway import Gateway
from switchyard.server.mcp import FrontServer

pytestmark = pytest.mark.anyio


async def answer_ada(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"name": "Ada"})


@asynccontextmanager
async def front(
    peers: Any, mode: str, *, script: str = "legacy_basic", settings: dict[str, Any] | None = None, **kwargs: Any
) -> AsyncIterator[tuple[FrontServer, Client]]:
    config = parse_config(
        {
            "mcpServers": {"legacy": peers.server_entry(peers.legacy_server(script))},
            "switchyard": {"pin": "off", **(settings or {})},
        },
        env={},
    )
    gateway = Gateway(config)
    with anyio.fail_after(60):
        async with gateway.running(wait=True):
            server = FrontServer(gateway)
            async with Client(server.server, mode=mode, **kwargs) as client:  # type: ignore[arg-type]
                yield server, client


def text(result: Any) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_pushed_elicitation_reaches_the_client_in_either_era(peers: Any, mode: str) -> None:
    async with front(peers, mode, elicitation_callback=answer_ada) as (server, client):
        result = await client.call_tool("legacy__ask_name", {})
        assert len(server.parked) == 0
    assert "Ada" in text(result)


async def test_a_modern_client_sees_a_parked_call_as_input_required(peers: Any) -> None:
    async with front(peers, "auto", elicitation_callback=answer_ada) as (server, client):
        first = await client.session.call_tool("legacy__ask_name", {}, allow_input_required=True)
        assert isinstance(first, types.InputRequiredResult)
        assert first.input_requests is not None
        assert len(server.parked) == 1
        (key,) = first.input_requests
        done = await client.session.call_tool(
            "legacy__ask_name",
            {},
            input_responses={key: {"action": "accept", "content": {"name": "Grace"}}},
            request_state=first.request_state,
            allow_input_required=True,
        )
        assert len(server.parked) == 0
    assert "Grace" in text(done)


async def test_a_client_that_cannot_answer_gets_a_refusal_not_a_hang(peers: Any) -> None:
    async with front(peers, "legacy") as (_, client):  # no elicitation capability declared
        try:
            result = await client.call_tool("legacy__ask_name", {})
        except MCPError as exc:
            message = exc.message
        else:
            message = text(result)
    assert "cannot answer elicitation/create" in message


async def answer_accept(context: ClientRequestContext, params: Any) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"answer": "x"})


async def test_a_parked_call_whose_client_never_retries_is_forgotten_after_its_ttl(peers: Any) -> None:
    settings = {"mrtr": {"ttl": 1}}
    async with front(peers, "auto", script="legacy_asker", settings=settings, elicitation_callback=answer_accept) as (
        server,
        client,
    ):
        server.parked.max_count = 1
        first = await client.session.call_tool("legacy__ask", {"message": "q"}, allow_input_required=True)
        assert isinstance(first, types.InputRequiredResult)
        assert len(server.parked) == 1
        with anyio.fail_after(10):
            while len(server.parked):  # noqa: ASYNC110 - no event to wait on: the question expires, the call ends
                await anyio.sleep(0.05)
        again = await client.session.call_tool("legacy__ask", {"message": "q2"}, allow_input_required=True)
    assert isinstance(again, types.InputRequiredResult)  # not "too many requests are waiting for client input"


async def test_the_call_timeout_bounds_a_modern_clients_call_to_a_legacy_upstream(peers: Any) -> None:
    # Such a call runs parked in the background (it may ask the client something); the call timeout still holds.
    settings = {"mrtr": {"ttl": 600}, "timeouts": {"call": 1}}
    async with front(peers, "auto", script="legacy_asker", settings=settings) as (_, client):
        started = anyio.current_time()
        result = await client.session.call_tool("legacy__sleep", {"seconds": 4}, allow_input_required=True)
        took = anyio.current_time() - started
    assert isinstance(result, types.CallToolResult)
    assert result.is_error
    assert "no answer within 1 s" in text(result)
    assert took < 3.5


FORM_ONLY = {"elicitation": {"form": {}}}


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_client_that_declared_form_elicitation_only_is_never_sent_url_mode(
    peers: Any, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []

    async def elicit(context: ClientRequestContext, params: Any) -> types.ElicitResult:
        seen.append(params)
        return types.ElicitResult(action="accept")

    import mcp.client.session as client_session  # noqa: PLC0415 - patched for this test only

    build = client_session.ClientSession._build_capabilities  # pyright: ignore[reportPrivateUsage]

    def form_only(self: Any, version: Any) -> Any:
        caps = build(self, version)
        caps.elicitation = types.ElicitationCapability(form=types.FormElicitationCapability())
        return caps

    monkeypatch.setattr(client_session.ClientSession, "_build_capabilities", form_only)
    async with front(peers, mode, script="legacy_asker", elicitation_callback=elicit) as (_, client):
        result = await client.session.call_tool("legacy__ask_url", {"message": "pay"}, allow_input_required=True)
    assert isinstance(result, types.CallToolResult), result  # never an input_required asking for a URL
    assert text(result).startswith("elicitation refused"), text(result)
    assert seen == []
