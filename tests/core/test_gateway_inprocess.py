"""The whole request path in one process: SDK client -> front -> gateway -> in-memory upstream servers."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError

from switchyard.config import ToolFilter
from switchyard.testing.harness import gateway_client

pytestmark = pytest.mark.anyio

MODES = ["auto", "legacy"]


def alpha() -> MCPServer:
    server = MCPServer("alpha", instructions="alpha things")

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    @server.tool()
    def shared() -> str:
        """A name both servers use."""
        return "from alpha"

    @server.tool()
    def fail() -> str:
        """Always fails."""
        raise ToolError("alpha failed on purpose")

    @server.tool()
    async def slow(steps: int, ctx: Context) -> str:
        """Reports progress."""
        for i in range(steps):
            await ctx.report_progress(i + 1, steps, f"step {i + 1}")
        return "done"

    @server.prompt()
    def greet(name: str) -> str:
        """Greets someone."""
        return f"Hello, {name}!"

    @server.resource("alpha://fixed")
    def fixed() -> str:
        """A fixed resource."""
        return "fixed alpha"

    @server.resource("alpha://items/{item}")
    def item(item: str) -> str:
        """One item."""
        return f"item {item}"

    return server


def beta() -> MCPServer:
    server = MCPServer("beta")

    @server.tool()
    def shared() -> str:
        """A name both servers use."""
        return "from beta"

    @server.tool()
    def structured(n: int) -> dict[str, int]:
        """Structured output."""
        return {"double": n * 2}

    return server


def servers() -> dict[str, Any]:
    return {"alpha": alpha(), "beta": beta()}


@pytest.mark.parametrize("mode", MODES)
async def test_tools_of_every_server_are_listed_with_namespaced_names(mode: str) -> None:
    async with gateway_client(servers(), mode=mode) as (_, client):
        names = [t.name for t in (await client.list_tools()).tools]
    assert names == ["alpha__echo", "alpha__shared", "alpha__fail", "alpha__slow", "beta__shared", "beta__structured"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_call_reaches_the_owning_server_and_returns_its_result(mode: str) -> None:
    async with gateway_client(servers(), mode=mode) as (_, client):
        a = await client.call_tool("alpha__shared", {})
        b = await client.call_tool("beta__shared", {})
        s = await client.call_tool("beta__structured", {"n": 21})
    assert a.content[0].text == "from alpha"  # type: ignore[union-attr]
    assert b.content[0].text == "from beta"  # type: ignore[union-attr]
    assert s.structured_content == {"double": 42}


@pytest.mark.parametrize("mode", MODES)
async def test_a_tool_error_comes_back_as_the_servers_error_result(mode: str) -> None:
    async with gateway_client(servers(), mode=mode) as (_, client):
        result = await client.call_tool("alpha__fail", {})
    assert result.is_error
    assert "alpha failed on purpose" in result.content[0].text  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", MODES)
async def test_an_unknown_tool_is_an_invalid_params_error(mode: str) -> None:
    async with gateway_client(servers(), mode=mode) as (_, client):
        with pytest.raises(MCPError) as info:
            await client.call_tool("nobody__nothing", {})
    assert info.value.code == -32602
    assert "nobody__nothing" in info.value.message


@pytest.mark.parametrize("mode", MODES)
async def test_without_prefix_a_collision_is_resolved_deterministically_and_reported(mode: str) -> None:
    settings = {"naming": {"prefix": False}}
    async with gateway_client(servers(), mode=mode, settings=settings) as (gateway, client):
        names = [t.name for t in (await client.list_tools()).tools]
        result = await client.call_tool("shared", {})
        collisions = [str(c) for c in gateway.catalog.collisions]
    assert "shared" in names
    assert "beta__shared" in names
    assert result.content[0].text == "from alpha"  # type: ignore[union-attr]
    assert collisions == ["tool 'shared' offered by alpha, beta: alpha keeps it; beta's is beta__shared"]


@pytest.mark.parametrize("mode", MODES)
async def test_progress_from_the_server_reaches_the_client(mode: str) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with gateway_client(servers(), mode=mode) as (_, client):
        result = await client.call_tool("alpha__slow", {"steps": 3}, progress_callback=on_progress)
    assert result.content[0].text == "done"  # type: ignore[union-attr]
    assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


@pytest.mark.parametrize("mode", MODES)
async def test_prompts_and_resources_are_federated(mode: str) -> None:
    async with gateway_client(servers(), mode=mode) as (_, client):
        prompts = [p.name for p in (await client.list_prompts()).prompts]
        prompt = await client.get_prompt("alpha__greet", {"name": "Ada"})
        resources = [str(r.uri) for r in (await client.list_resources()).resources]
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        fixed = await client.read_resource("alpha://fixed")
        item = await client.read_resource("alpha://items/42")
    assert prompts == ["alpha__greet"]
    assert "Hello, Ada!" in prompt.messages[0].content.text  # type: ignore[union-attr]
    assert resources == ["alpha://fixed"]
    assert templates == ["alpha://items/{item}"]
    assert fixed.contents[0].text == "fixed alpha"  # type: ignore[union-attr]
    assert item.contents[0].text == "item 42"  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", MODES)
async def test_an_unknown_resource_is_not_found(mode: str) -> None:
    async with gateway_client(servers(), mode=mode) as (_, client):
        with pytest.raises(MCPError) as info:
            await client.read_resource("nowhere://x")
    assert info.value.code == -32602


async def test_a_tool_filter_hides_denied_tools_from_lists_and_calls() -> None:
    async with gateway_client(servers()) as (gateway, client):
        gateway.config = gateway.config.model_copy(
            update={
                "servers": {
                    **gateway.config.servers,
                    "alpha": gateway.config.servers["alpha"].model_copy(
                        update={"tools": ToolFilter(deny=("fail", "sl*"))}
                    ),
                }
            }
        )
        gateway.rebuild()
        names = [t.name for t in (await client.list_tools()).tools]
        with pytest.raises(MCPError):
            await client.call_tool("alpha__fail", {})
    assert "alpha__fail" not in names
    assert "alpha__slow" not in names
    assert "alpha__echo" in names


async def test_concurrent_calls_share_one_upstream_session() -> None:
    async with gateway_client(servers()) as (gateway, client):
        attempts_before = {n: u.attempts for n, u in gateway.upstreams.items()}  # type: ignore[attr-defined]
        results: list[str] = []

        async def one(i: int) -> None:
            r = await client.call_tool("alpha__echo", {"text": str(i)})
            results.append(r.content[0].text)  # type: ignore[union-attr]

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(one, i)
        attempts_after = {n: u.attempts for n, u in gateway.upstreams.items()}  # type: ignore[attr-defined]
    assert sorted(results, key=int) == [str(i) for i in range(50)]
    assert attempts_before == attempts_after == {"alpha": 1, "beta": 1}
