"""Tool retrieval through the real gateway: `switchyard serve` as a subprocess over real upstream servers,
driven by SDK clients in both eras (issue 7)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

pytestmark = pytest.mark.anyio

MODES = ["auto", "legacy"]


def write_config(tmp_path: Path, peers: Any, exposure: str) -> Path:
    doc = {
        "mcpServers": {
            "time": peers.server_entry(peers.time_server()),
            "fast": peers.server_entry(peers.fixture_server("fast")),
            "changing": peers.server_entry(peers.fixture_server("changing")),
        },
        "switchyard": {"exposure": exposure, "store": {"path": str(tmp_path / "store.db")}},
    }
    path = tmp_path / "servers.json"
    path.write_text(json.dumps(doc))
    return path


@asynccontextmanager
async def gateway(peers: Any, config: Path, mode: str, **kwargs: Any) -> AsyncIterator[Client]:
    switchyard = Path(peers.venv_python()).parent / "switchyard"
    params = StdioServerParameters(command=str(switchyard), args=["serve", "-c", str(config)])
    # One deadline around the client's whole life: its task group must nest inside the cancel scope.
    with anyio.fail_after(100):
        async with Client(params, mode=mode, **kwargs) as client:  # type: ignore[arg-type]
            yield client


async def search(client: Client, query: str, k: int = 5) -> list[str]:
    result = await client.call_tool("search_tools", {"query": query, "k": k})
    assert not result.is_error, result
    assert result.structured_content is not None
    return [t["name"] for t in result.structured_content["tools"]]


@pytest.mark.parametrize("mode", MODES)
async def test_search_mode_finds_and_calls_real_tools(peers: Any, tmp_path: Path, mode: str) -> None:
    async with gateway(peers, write_config(tmp_path, peers, "search"), mode) as client:
        listed = [t.name for t in (await client.list_tools()).tools]
        found = await search(client, "what is the current time in a given timezone", 3)
        result = await client.call_tool(
            "call_tool", {"name": "time__get_current_time", "arguments": {"timezone": "UTC"}}
        )
    assert listed == ["search_tools", "call_tool"]
    assert "time__get_current_time" in found
    assert not result.is_error
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    assert json.loads(block.text)["timezone"] == "UTC"


@pytest.mark.parametrize("mode", MODES)
async def test_a_tool_added_upstream_becomes_searchable(peers: Any, tmp_path: Path, mode: str) -> None:
    async with gateway(peers, write_config(tmp_path, peers, "search"), mode) as client:
        before = await search(client, "summarize invoice totals", 3)
        added = await client.call_tool(
            "call_tool", {"name": "changing__add_tool", "arguments": {"name": "summarize_invoice_totals"}}
        )
        assert not added.is_error
        found: list[str] = []
        with anyio.fail_after(20):
            while "changing__summarize_invoice_totals" not in found:
                found = await search(client, "summarize invoice totals", 3)
                await anyio.sleep(0.05)  # polling the gateway's own refresh; bounded by fail_after
    assert "changing__summarize_invoice_totals" not in before
    assert found[0] == "changing__summarize_invoice_totals"


async def test_dynamic_mode_grows_a_legacy_sessions_tool_list(peers: Any, tmp_path: Path) -> None:
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    config = write_config(tmp_path, peers, "dynamic")
    async with gateway(peers, config, "legacy", message_handler=on_message) as client:
        before = [t.name for t in (await client.list_tools()).tools]
        found = await search(client, "convert a time between two timezones", 2)
        with anyio.fail_after(10):
            await changed.wait()
        after = [t.name for t in (await client.list_tools()).tools]
        direct = await client.call_tool(
            "time__convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Europe/Paris"}
        )
    assert before == ["search_tools", "call_tool"]
    assert "time__convert_time" in found
    assert after[:2] == ["search_tools", "call_tool"]
    assert set(found) <= set(after[2:])
    assert not direct.is_error
