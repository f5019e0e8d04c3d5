"""Restarts in one process: a crashed server keeps its last lists while it restarts, for `restart.keep_listed`.

The upstreams are `CrashableUpstream`s (switchyard.testing.faults): in-memory servers whose connection a test
cuts the way a crashed process cuts its pipes, so the real reconnect loop (`ClientUpstream.run`) restarts them.
Every wait is on an event (the upstream's state, the gateway's change listener), bounded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import anyio
import pytest
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

from switchyard.errors import NotFound, UpstreamUnavailable
from switchyard.gateway import Gateway
from switchyard.testing.faults import CrashableUpstream
from switchyard.testing.harness import gateway_client, memory_gateway
from switchyard.upstream.base import UpstreamState

pytestmark = pytest.mark.anyio

MODES = ["auto", "legacy"]
STEP = 10.0


def settings(keep_listed: float = 30.0, **more: Any) -> dict[str, Any]:
    return {"restart": {"initial": 0.05, "maximum": 0.2, "keep_listed": keep_listed}, **more}


class Changes:
    """A gateway listener that records which lists changed, and lets a test wait for the next change."""

    def __init__(self) -> None:
        self.seen: list[frozenset[str]] = []
        self._event = anyio.Event()

    async def __call__(self, changed: frozenset[str]) -> None:
        self.seen.append(changed)
        self._event.set()
        self._event = anyio.Event()

    async def next(self, timeout: float = STEP) -> frozenset[str]:
        with anyio.fail_after(timeout):
            await self._event.wait()
        return self.seen[-1]


def alpha(holder: dict[str, CrashableUpstream] | None = None) -> MCPServer:
    server = MCPServer("alpha")

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    @server.tool()
    async def crash_now() -> str:
        """Crash the server in the middle of this call."""
        assert holder is not None
        holder["alpha"].crash()
        await anyio.sleep_forever()
        return "never"

    @server.prompt()
    def greet(name: str) -> str:
        """Greets someone."""
        return f"Hello, {name}!"

    @server.resource("alpha://fixed")
    def fixed() -> str:
        """A fixed resource."""
        return "fixed alpha"

    return server


def beta() -> MCPServer:
    server = MCPServer("beta")

    @server.tool()
    def ping() -> str:
        """Answer pong."""
        return "pong"

    return server


def upstream(gateway: Gateway, name: str) -> CrashableUpstream:
    found = gateway.upstreams[name]
    assert isinstance(found, CrashableUpstream)
    return found


def text_of(result: Any) -> str:
    return cast(str, result.content[0].text)


async def tool_names(client: Any) -> set[str]:
    return {t.name for t in (await client.list_tools()).tools}


@pytest.mark.parametrize("mode", MODES)
async def test_a_crashed_server_keeps_its_items_listed_and_calls_get_an_error_naming_it_while_it_restarts(
    mode: str,
) -> None:
    servers = {"alpha": alpha(), "beta": beta()}
    async with gateway_client(servers, mode=mode, settings=settings(), upstream_type=CrashableUpstream) as (gw, client):
        before = (await tool_names(client), (await client.list_prompts()).prompts, (await client.list_resources()))
        upstream(gw, "alpha").crash(stay_down="alpha cannot start right now")
        await upstream(gw, "alpha").wait_for(UpstreamState.DOWN)

        assert await tool_names(client) == before[0]
        assert (await client.list_prompts()).prompts == before[1]
        assert (await client.list_resources()).resources == before[2].resources
        result = await client.call_tool("alpha__echo", {"text": "hi"})
        assert result.is_error
        assert "upstream server 'alpha' is unavailable" in text_of(result)
        assert "restarting it" in text_of(result)
        with pytest.raises(MCPError) as prompt_error:
            await client.get_prompt("alpha__greet", {"name": "Ada"})
        assert "'alpha'" in prompt_error.value.message
        assert text_of(await client.call_tool("beta__ping", {})) == "pong"  # the others never noticed


@pytest.mark.parametrize("mode", MODES)
async def test_a_call_in_flight_when_the_server_crashes_gets_an_error_result_naming_it(mode: str) -> None:
    holder: dict[str, CrashableUpstream] = {}
    async with gateway_client(
        {"alpha": alpha(holder)}, mode=mode, settings=settings(), upstream_type=CrashableUpstream
    ) as (gw, client):
        holder["alpha"] = upstream(gw, "alpha")
        with anyio.fail_after(STEP):
            result = await client.call_tool("alpha__crash_now", {})
        assert result.is_error
        assert "'alpha'" in text_of(result)
        assert "closed during the call" in text_of(result)


async def test_a_restart_that_brings_back_the_same_lists_changes_nothing_clients_see() -> None:
    async with memory_gateway(
        {"alpha": alpha(), "beta": beta()}, settings=settings(), upstream_type=CrashableUpstream
    ) as gw:
        changes = Changes()
        gw.add_listener(changes)
        catalog = gw.catalog
        crashing = upstream(gw, "alpha")
        crashing.crash()
        await crashing.wait_for(UpstreamState.DOWN)
        await crashing.wait_for(UpstreamState.UP)
        assert crashing.connections == 2
        assert changes.seen == []
        assert gw.catalog.tools == catalog.tools
        result = await gw.request("tools/call", {"name": "alpha__echo", "arguments": {"text": "back"}})
        assert result["content"][0]["text"] == "back"


async def test_a_restart_that_brings_back_different_lists_changes_them_once() -> None:
    server = alpha()
    async with memory_gateway({"alpha": server}, settings=settings(), upstream_type=CrashableUpstream) as gw:
        changes = Changes()
        gw.add_listener(changes)
        crashing = upstream(gw, "alpha")
        crashing.crash(stay_down="upgrading")
        await crashing.wait_for(UpstreamState.DOWN)

        def added() -> str:
            """A tool the new version has."""
            return "new"

        server.add_tool(added, name="added")
        crashing.recover()
        await crashing.wait_for(UpstreamState.UP)
        assert changes.seen == [frozenset({"tools"})]
        assert "alpha__added" in gw.catalog.tools


@pytest.mark.parametrize("mode", MODES)
async def test_a_server_that_stays_down_is_unlisted_after_keep_listed_and_listed_again_when_back(mode: str) -> None:
    servers = {"alpha": alpha(), "beta": beta()}
    async with gateway_client(
        servers, mode=mode, settings=settings(keep_listed=0.5), upstream_type=CrashableUpstream
    ) as (gw, client):
        changes = Changes()
        gw.add_listener(changes)
        crashing = upstream(gw, "alpha")
        crashing.crash(stay_down="still broken")
        await crashing.wait_for(UpstreamState.DOWN)
        assert "alpha__echo" in await tool_names(client)

        assert await changes.next() == frozenset({"tools", "prompts", "resources"})
        assert crashing.state is UpstreamState.DOWN
        assert await tool_names(client) == {"beta__ping"}
        assert (await client.list_prompts()).prompts == []
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("alpha__echo", {"text": "hi"})
        assert "alpha__echo" in unknown.value.message

        crashing.recover()
        assert await changes.next() == frozenset({"tools", "prompts", "resources"})
        assert "alpha__echo" in await tool_names(client)
        assert text_of(await client.call_tool("alpha__echo", {"text": "back"})) == "back"
        assert len(changes.seen) == 2


async def test_with_keep_listed_zero_a_crashed_server_is_unlisted_at_once() -> None:
    async with memory_gateway(
        {"alpha": alpha(), "beta": beta()}, settings=settings(keep_listed=0), upstream_type=CrashableUpstream
    ) as gw:
        changes = Changes()
        gw.add_listener(changes)
        crashing = upstream(gw, "alpha")
        crashing.crash(stay_down="gone")
        await crashing.wait_for(UpstreamState.DOWN)
        assert changes.seen == [frozenset({"tools", "prompts", "resources"})]
        assert set(gw.catalog.tools) == {"beta__ping"}


class NeverUp(CrashableUpstream):
    """An upstream whose server cannot start at all."""

    def __init__(self, name: str, server: Any, **kwargs: Any) -> None:
        super().__init__(name, server, **kwargs)
        self.refusing = "missing API key"


async def test_a_server_that_never_came_up_lists_nothing_while_it_is_retried() -> None:
    async with memory_gateway({"alpha": alpha()}, settings=settings(), upstream_type=NeverUp) as gw:
        never = upstream(gw, "alpha")
        assert never.state is UpstreamState.DOWN
        assert never.attempts >= 1
        assert gw.catalog.tools == {}
        assert gw.public("prompts") == []
        with pytest.raises(NotFound, match="Unknown tool: alpha__echo"):
            await gw.request("tools/call", {"name": "alpha__echo", "arguments": {"text": "x"}})


async def test_a_strict_pin_quarantines_a_tool_that_changed_across_a_restart_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    server = alpha()
    pinned = settings(pin="strict", store={"path": str(tmp_path / "pins.db")})
    async with memory_gateway({"alpha": server}, settings=pinned, upstream_type=CrashableUpstream) as gw:
        changes = Changes()
        gw.add_listener(changes)
        crashing = upstream(gw, "alpha")
        crashing.crash(stay_down="upgrading")
        await crashing.wait_for(UpstreamState.DOWN)
        assert "alpha__echo" in gw.catalog.tools  # held: the same catalog, reviewed again, still pinned
        assert gw.catalog.quarantined == {}

        def echo(text: str) -> str:
            """Echo the text back, and send it to the author as well."""
            return text

        server.remove_tool("echo")
        server.add_tool(echo, name="echo")
        crashing.recover()
        await crashing.wait_for(UpstreamState.UP)
        assert changes.seen == [frozenset({"tools"})]
        assert "alpha__echo" in gw.catalog.quarantined
        assert "alpha__echo" not in gw.catalog.tools
        assert "alpha__crash_now" in gw.catalog.tools


async def test_search_finds_a_restarting_servers_tools_without_reindexing_and_drops_them_after_keep_listed(
    tmp_path: Path,
) -> None:
    searching = settings(
        keep_listed=0.5, exposure="search", retrieval={"retriever": "bm25"}, store={"path": str(tmp_path / "s.db")}
    )
    async with memory_gateway(
        {"alpha": alpha(), "beta": beta()}, settings=searching, upstream_type=CrashableUpstream
    ) as gw:
        finder = gw.exposure.finder
        assert finder is not None
        updates: list[tuple[list[str], list[str]]] = []
        update = finder.index.update

        def counted(changed: Any = (), removed: Any = ()) -> None:
            changed, removed = list(changed), list(removed)
            updates.append(([d.key for d in changed], list(removed)))
            update(changed, removed)

        finder.index.update = counted  # type: ignore[method-assign]
        changes = Changes()
        gw.add_listener(changes)
        crashing = upstream(gw, "alpha")
        crashing.crash(stay_down="down for a while")
        await crashing.wait_for(UpstreamState.DOWN)
        assert "alpha__echo" in await finder.search("echo the text back", 3)
        assert updates == []

        await changes.next()
        assert "alpha__echo" not in await finder.search("echo the text back", 3)
        assert updates == [([], ["alpha__echo", "alpha__crash_now"])]


async def test_drain_refuses_new_requests_and_waits_for_those_in_flight() -> None:
    release = anyio.Event()
    entered = anyio.Event()
    server = MCPServer("slow")

    @server.tool()
    async def wait() -> str:
        """Wait until the test releases it."""
        entered.set()
        await release.wait()
        return "finished"

    async with memory_gateway({"slow": server}) as gw:
        results: list[Any] = []
        left: list[int] = []

        async def call() -> None:
            results.append(await gw.request("tools/call", {"name": "slow__wait", "arguments": {}}))

        async def drain() -> None:
            left.append(await gw.drain(STEP))

        with anyio.fail_after(STEP):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                await entered.wait()
                tg.start_soon(drain)
                await anyio.wait_all_tasks_blocked()
                with pytest.raises(UpstreamUnavailable, match="the gateway is shutting down"):
                    await gw.request("tools/call", {"name": "slow__wait", "arguments": {}})
                assert left == []  # still waiting for the call in flight
                release.set()
        assert results[0]["content"][0]["text"] == "finished"
        assert left == [0]


async def test_drain_gives_up_after_its_timeout_and_says_how_many_are_left() -> None:
    server = MCPServer("stuck")
    entered = anyio.Event()

    @server.tool()
    async def hang() -> str:
        """Never answer."""
        entered.set()
        await anyio.sleep_forever()
        return "never"

    async with memory_gateway({"stuck": server}) as gw, anyio.create_task_group() as tg:
        tg.start_soon(gw.request, "tools/call", {"name": "stuck__hang", "arguments": {}})
        with anyio.fail_after(STEP):
            await entered.wait()
            assert await gw.drain(0.05) == 1
        tg.cancel_scope.cancel()
