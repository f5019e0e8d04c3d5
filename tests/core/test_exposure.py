"""Exposure modes through the real front: `search` meta-tools, `dynamic` working sets, pinned tools."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

from switchyard.exposure import WorkingSet
from switchyard.testing.harness import gateway_client

pytestmark = pytest.mark.anyio


def weather() -> MCPServer:
    server = MCPServer("weather")

    @server.tool()
    def get_forecast(city: str) -> str:
        """Get the weather forecast for a city: temperature, rain and wind for the next days."""
        return f"sunny in {city}"

    @server.tool()
    def get_alerts(state: str) -> str:
        """Get active severe weather alerts for a US state."""
        return f"no alerts in {state}"

    return server


def files() -> MCPServer:
    server = MCPServer("files")

    @server.tool()
    def read_file(path: str) -> str:
        """Read the complete contents of a text file from disk."""
        return f"contents of {path}"

    @server.tool()
    def list_directory(path: str) -> str:
        """List the files and folders in a directory."""
        return f"listing of {path}"

    return server


def settings(tmp_path: Path, mode: str, **extra: Any) -> dict[str, Any]:
    return {
        "exposure": mode,
        "store": {"path": str(tmp_path / "store.db")},
        "retrieval": {"retriever": "bm25"},
        **extra,
    }


def text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_search_mode_lists_only_the_meta_tools_and_pinned_tools(tmp_path: Path, mode: str) -> None:
    servers = {"weather": weather(), "files": files()}
    cfg = settings(tmp_path, "search", pinned=["files__read_file"])
    async with gateway_client(servers, mode=mode, settings=cfg) as (_, client):
        names = [t.name for t in (await client.list_tools()).tools]
    assert names == ["search_tools", "call_tool", "files__read_file"]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_search_tools_returns_the_right_tools_with_their_schemas(tmp_path: Path, mode: str) -> None:
    servers = {"weather": weather(), "files": files()}
    async with gateway_client(servers, mode=mode, settings=settings(tmp_path, "search")) as (_, client):
        result = await client.call_tool("search_tools", {"query": "what is the weather forecast in Paris", "k": 2})
        only_files = await client.call_tool("search_tools", {"query": "weather", "k": 5, "server": "files"})
    assert result.structured_content is not None
    found = result.structured_content["tools"]
    assert found[0]["name"] == "weather__get_forecast"
    assert found[0]["inputSchema"]["properties"]["city"]["type"] == "string"
    assert len(found) == 2
    assert only_files.structured_content is not None
    assert {t["server"] for t in only_files.structured_content["tools"]} <= {"files"}


async def test_search_tools_advertises_and_applies_the_configured_default_k(tmp_path: Path) -> None:
    servers = {"weather": weather(), "files": files()}
    cfg = settings(tmp_path, "search", retrieval={"retriever": "bm25", "default_k": 1})
    async with gateway_client(servers, settings=cfg) as (_, client):
        listed = {t.name: t for t in (await client.list_tools()).tools}
        result = await client.call_tool("search_tools", {"query": "weather forecast alerts"})
    assert listed["search_tools"].input_schema["properties"]["k"]["default"] == 1
    assert result.structured_content is not None
    assert len(result.structured_content["tools"]) == 1


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_call_tool_calls_a_found_tool(tmp_path: Path, mode: str) -> None:
    servers = {"weather": weather(), "files": files()}
    async with gateway_client(servers, mode=mode, settings=settings(tmp_path, "search")) as (_, client):
        result = await client.call_tool("call_tool", {"name": "weather__get_forecast", "arguments": {"city": "Oslo"}})
        direct = await client.call_tool("weather__get_alerts", {"state": "CA"})
    assert text(result) == "sunny in Oslo"
    assert text(direct) == "no alerts in CA"


async def test_bad_meta_tool_arguments_are_invalid_params(tmp_path: Path) -> None:
    servers = {"weather": weather()}
    async with gateway_client(servers, settings=settings(tmp_path, "search")) as (_, client):
        with pytest.raises(MCPError) as info:
            await client.call_tool("search_tools", {"query": "", "k": 3})
        with pytest.raises(MCPError) as info2:
            await client.call_tool("call_tool", {"name": "nobody__nothing", "arguments": {}})
    assert info.value.code == -32602
    assert info2.value.code == -32602


async def test_dynamic_mode_adds_found_tools_to_a_legacy_sessions_list_and_says_so(tmp_path: Path) -> None:
    servers = {"weather": weather(), "files": files()}
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    cfg = settings(tmp_path, "dynamic")
    async with gateway_client(servers, mode="legacy", settings=cfg, message_handler=on_message) as (_, client):
        before = [t.name for t in (await client.list_tools()).tools]
        await client.call_tool("search_tools", {"query": "read a file from disk", "k": 1})
        with anyio.fail_after(5):
            await changed.wait()
        after = [t.name for t in (await client.list_tools()).tools]
        result = await client.call_tool("files__read_file", {"path": "/tmp/x"})
    assert before == ["search_tools", "call_tool"]
    assert after == ["search_tools", "call_tool", "files__read_file"]
    assert text(result) == "contents of /tmp/x"


async def test_dynamic_mode_on_the_stateless_revision_behaves_like_search(tmp_path: Path) -> None:
    servers = {"weather": weather(), "files": files()}
    async with gateway_client(servers, mode="auto", settings=settings(tmp_path, "dynamic")) as (_, client):
        await client.call_tool("search_tools", {"query": "read a file", "k": 1})
        names = [t.name for t in (await client.list_tools()).tools]
    assert names == ["search_tools", "call_tool"]


def test_a_working_set_is_bounded_and_evicts_the_least_recently_used() -> None:
    ws = WorkingSet(3)
    assert ws.add(["a", "b", "c"])
    ws.touch("a")
    assert ws.add(["d"])
    assert ws.names() == ["b", "a", "d"]  # "a" (most relevant, then used) outlives "c" (least relevant)
    assert not ws.add(["a"])


def shadowing() -> MCPServer:
    """Real tools named like the meta-tools (what prefixing off, or the separator `_`, can produce)."""
    server = MCPServer("shadow")

    @server.tool()
    def search_tools(query: str) -> str:
        """Search the shadow server's own records."""
        return f"shadow records for {query}"

    @server.tool()
    def call_tool(name: str) -> str:
        """Place a phone call to a named contact."""
        return f"calling {name}"

    return server


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_an_upstream_tool_named_like_a_meta_tool_never_shadows_it_and_is_reached_through_call_tool(
    tmp_path: Path, mode: str
) -> None:
    servers = {"weather": weather(), "shadow": shadowing()}
    cfg = settings(tmp_path, "search", naming={"prefix": False})
    async with gateway_client(servers, mode=mode, settings=cfg) as (_, client):
        names = [t.name for t in (await client.list_tools()).tools]
        found = await client.call_tool("search_tools", {"query": "weather forecast for a city", "k": 1})
        via_call_tool = await client.call_tool("call_tool", {"name": "get_forecast", "arguments": {"city": "Oslo"}})
        shadowed = await client.call_tool("call_tool", {"name": "search_tools", "arguments": {"query": "x"}})
    assert names == ["search_tools", "call_tool"]
    assert [t["name"] for t in (found.structured_content or {})["tools"]] == ["get_forecast"]
    assert text(via_call_tool) == "sunny in Oslo"
    assert text(shadowed) == "shadow records for x"


async def test_dynamic_mode_counts_a_call_by_the_listed_name_as_use(tmp_path: Path) -> None:
    servers = {"weather": weather(), "files": files()}
    cfg = settings(tmp_path, "dynamic", working_set=2)
    async with gateway_client(servers, mode="legacy", settings=cfg) as (_, client):
        await client.call_tool("search_tools", {"query": "weather forecast for a city", "k": 1})
        await client.call_tool("search_tools", {"query": "read a file from disk", "k": 1})
        await client.call_tool("weather__get_forecast", {"city": "Oslo"})  # by name: now the most recently used
        await client.call_tool("search_tools", {"query": "list the files in a directory", "k": 1})
        names = [t.name for t in (await client.list_tools()).tools]
    assert names == ["search_tools", "call_tool", "weather__get_forecast", "files__list_directory"]


async def test_dynamic_mode_finding_a_pinned_tool_takes_no_slot_and_changes_no_list(tmp_path: Path) -> None:
    servers = {"weather": weather(), "files": files()}
    changes: list[Any] = []
    first = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changes.append(message)
            first.set()

    cfg = settings(tmp_path, "dynamic", working_set=1, pinned=["files__read_file"])
    async with gateway_client(servers, mode="legacy", settings=cfg, message_handler=on_message) as (_, client):
        await client.call_tool("search_tools", {"query": "weather forecast for a city", "k": 1})
        with anyio.fail_after(5):
            await first.wait()
        await client.call_tool("search_tools", {"query": "read a file from disk", "k": 1})  # the pinned tool
        await anyio.sleep(0.2)  # a list_changed would have arrived by now
        names = [t.name for t in (await client.list_tools()).tools]
    assert len(changes) == 1
    assert names == ["search_tools", "call_tool", "files__read_file", "weather__get_forecast"]
