"""Rug-pull protection end to end: real stdio servers whose definitions change between runs, a shadowing
server, quarantine in lists and calls in both eras, and approval."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from switchyard.catalog.pins import Hold, definition_diff
from switchyard.config import parse_config
from switchyard.errors import QUARANTINED
from switchyard.gateway import Gateway
from switchyard.server.mcp import FrontServer

pytestmark = pytest.mark.anyio


def config(
    peers: Any,
    store: Path,
    *,
    variant: str = "honest",
    extra: bool = False,
    pin: str = "strict",
    shadow: bool = False,
    meta: dict[str, str] | None = None,
) -> Any:
    env = {"RUGPULL_VARIANT": variant, "RUGPULL_EXTRA": "1" if extra else "0", **(meta or {})}
    servers: dict[str, Any] = {"weather": {**peers.server_entry(peers.fixture_server("rugpull", env=env)), "pin": pin}}
    if shadow:
        servers["helper"] = peers.server_entry(peers.fixture_server("shadow"))
    return parse_config({"mcpServers": servers, "switchyard": {"store": {"path": str(store)}}}, env={})


@asynccontextmanager
async def front(cfg: Any, mode: str) -> AsyncIterator[tuple[Gateway, Client]]:
    gateway = Gateway(cfg)
    async with gateway.running(wait=True), Client(FrontServer(gateway).server, mode=mode) as client:  # type: ignore[arg-type]
        yield gateway, client


async def names(client: Client) -> list[str]:
    return [t.name for t in (await client.list_tools()).tools]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_changed_definition_is_quarantined_until_approved(peers: Any, tmp_path: Path, mode: str) -> None:
    store = tmp_path / "store.db"
    async with front(config(peers, store), mode) as (_, client):  # first use: pinned
        assert await names(client) == ["weather__forecast"]
        ok = await client.call_tool("weather__forecast", {"city": "Oslo"})
        assert not ok.is_error

    async with front(config(peers, store, variant="changed"), mode) as (gateway, client):  # the rug pull
        assert await names(client) == []
        with pytest.raises(MCPError) as info:
            await client.call_tool("weather__forecast", {"city": "Oslo"})
        assert info.value.code == QUARANTINED
        assert "changed since it was approved (description" in info.value.message
        assert "switchyard approve --server weather forecast" in info.value.message
        holds = [h for h in gateway.catalog.quarantined.values() if isinstance(h, Hold)]
        assert [(h.tool, h.kind) for h in holds] == [("forecast", "changed")]
        gateway.pinning.approve(holds)

    async with front(config(peers, store, variant="changed"), mode) as (_, client):  # approved by a person
        assert await names(client) == ["weather__forecast"]


async def test_a_swapped_apps_view_is_a_changed_definition_and_other_meta_is_not(peers: Any, tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    view = {"RUGPULL_UI": "ui://weather/view.html", "RUGPULL_BUILD": "1"}
    async with front(config(peers, store, meta=view), "auto") as (_, client):  # first use: pinned
        tools = (await client.list_tools()).tools
        assert [(t.name, (t.meta or {}).get("ui")) for t in tools] == [
            ("weather__forecast", {"resourceUri": "ui://weather/view.html"})
        ]
    rebuilt = {**view, "RUGPULL_BUILD": "2"}  # transport detail: not pinned
    async with front(config(peers, store, meta=rebuilt), "auto") as (_, client):
        assert await names(client) == ["weather__forecast"]
    swapped = {**view, "RUGPULL_UI": "ui://weather/other.html"}
    async with front(config(peers, store, meta=swapped), "auto") as (gateway, client):
        assert await names(client) == []
        hold = gateway.catalog.quarantined["weather__forecast"]
        assert isinstance(hold, Hold)
        assert hold.kind == "changed"
        assert "(_meta)" in hold.reason
        assert "ui://weather/other.html" in definition_diff(hold.approved, hold.definition)


async def test_a_new_tool_on_a_strict_server_is_held_and_admitted_under_warn(peers: Any, tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    async with front(config(peers, store), "auto") as (_, client):
        assert await names(client) == ["weather__forecast"]
    async with front(config(peers, store, extra=True), "auto") as (gateway, client):
        assert await names(client) == ["weather__forecast"]
        assert gateway.catalog.quarantined["weather__alerts"].kind == "new"
    async with front(config(peers, store, extra=True, pin="warn"), "auto") as (gateway, client):
        assert await names(client) == ["weather__forecast", "weather__alerts"]
        assert not gateway.catalog.quarantined


async def test_pin_off_serves_a_changed_definition(peers: Any, tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    async with front(config(peers, store), "auto") as (_, client):
        assert await names(client) == ["weather__forecast"]
    # "changed" also carries a poisoned description: only the start-up scan may hold it now.
    cfg = config(peers, store, variant="changed", pin="off")
    async with front(cfg, "auto") as (gateway, client):
        assert await names(client) == []
        assert gateway.catalog.quarantined["weather__forecast"].kind == "finding"


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_server_shadowing_another_servers_tool_is_quarantined_at_start(
    peers: Any, tmp_path: Path, mode: str
) -> None:
    async with front(config(peers, tmp_path / "s.db", shadow=True), mode) as (gateway, client):
        listed = await names(client)
        with pytest.raises(MCPError) as info:
            await client.call_tool("helper__add", {"a": 1, "b": 2})
    assert listed == ["weather__forecast"]
    assert info.value.code == QUARANTINED
    assert "scanner found" in info.value.message
    assert gateway.catalog.quarantined["helper__add"].kind == "finding"
