"""Rate limits and concurrency caps: exact under 50 concurrent callers, with an injected clock (no sleeps)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from governance_helpers import FakeClock, ListSink, governed
from mcp import Client
from mcp.shared.exceptions import MCPError

from switchyard.config import BucketSettings, LimitSettings
from switchyard.errors import RATE_LIMITED, RateLimited, to_error_data
from switchyard.identity import Principal
from switchyard.pipeline.context import CallContext
from switchyard.server.mcp import FrontServer
from switchyard.stages.ratelimit import RateLimitStage, TokenBucket

pytestmark = pytest.mark.anyio

ALICE = Principal("alice", "api_key")
BOB = Principal("bob", "api_key")


def echo(text: str = "x") -> dict[str, Any]:
    return {"name": "alpha__echo", "arguments": {"text": text}}


async def burst(gateway: Any, n: int, principal: Principal = ALICE, params: dict[str, Any] | None = None) -> list[str]:
    """Fire `n` concurrent calls; the outcome of each: "ok" or "limited"."""
    outcomes: list[str] = []

    async def one() -> None:
        try:
            await gateway.request("tools/call", params or echo(), principal=principal)
            outcomes.append("ok")
        except RateLimited:
            outcomes.append("limited")

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return outcomes


async def test_a_per_principal_bucket_admits_exactly_its_burst_of_50_concurrent_callers_then_its_rate() -> None:
    clock = FakeClock()
    async with governed({"limits": {"per_principal": {"rate": 5, "burst": 10}}}, clock=clock) as gateway:
        first = await burst(gateway, 50)
        clock.advance(1.0)
        second = await burst(gateway, 50)
        other = await burst(gateway, 50, BOB)
    assert first.count("ok") == 10
    assert first.count("limited") == 40
    assert second.count("ok") == 5
    assert other.count("ok") == 10


async def test_a_refusal_is_a_clear_json_rpc_error_with_a_retry_after_hint() -> None:
    clock = FakeClock()
    async with governed({"limits": {"per_principal": {"rate": 2, "burst": 1}}}, clock=clock) as gateway:
        await gateway.request("tools/call", echo(), principal=ALICE)
        clock.advance(0.25)
        with pytest.raises(RateLimited) as info:
            await gateway.request("tools/call", echo(), principal=ALICE)
    wire = to_error_data(info.value)
    assert wire.code == RATE_LIMITED
    assert wire.data == {"retryAfterSeconds": 0.25}
    assert "principal 'alice'" in wire.message


async def test_a_per_principal_and_tool_bucket_limits_one_tool_only() -> None:
    clock = FakeClock()
    limits = {"limits": {"per_principal_tool": {"rate": 1, "burst": 3}}}
    async with governed(limits, clock=clock) as gateway:
        echoes = await burst(gateway, 50)
        lookups = await burst(gateway, 50, params={"name": "beta__lookup", "arguments": {"key": "k"}})
    assert echoes.count("ok") == 3
    assert lookups.count("ok") == 3


async def test_a_per_upstream_bucket_is_shared_by_every_principal() -> None:
    clock = FakeClock()
    async with governed({"limits": {"per_upstream": {"alpha": {"rate": 1, "burst": 4}}}}, clock=clock) as gateway:
        alice = await burst(gateway, 25, ALICE)
        bob = await burst(gateway, 25, BOB)
        beta = await burst(gateway, 10, params={"name": "beta__lookup", "arguments": {"key": "k"}})
    assert alice.count("ok") + bob.count("ok") == 4
    assert beta.count("ok") == 10


async def test_a_refusal_by_one_bucket_spends_no_token_from_another() -> None:
    clock = FakeClock()
    limits = {"limits": {"per_principal": {"rate": 1, "burst": 5}, "per_principal_tool": {"rate": 1, "burst": 1}}}
    async with governed(limits, clock=clock) as gateway:
        echoes = await burst(gateway, 10)
        lookups = await burst(gateway, 10, params={"name": "beta__lookup", "arguments": {"key": "k"}})
    assert echoes.count("ok") == 1
    assert lookups.count("ok") == 1  # the 9 refused echoes did not drain alice's principal bucket (5 - 2 = 3 left)


async def test_the_concurrency_cap_refuses_calls_beyond_it_while_others_are_in_flight() -> None:
    gate = anyio.Event()
    sink = ListSink()
    async with governed({"limits": {"concurrency": {"alpha": 3}}}, sink=sink, gate=gate) as gateway:
        outcomes: list[str] = []
        started = 0
        all_started = anyio.Event()

        async def waiter() -> None:
            nonlocal started
            started += 1
            if started == 3:
                all_started.set()
            await gateway.request("tools/call", {"name": "alpha__wait", "arguments": {}}, principal=ALICE)
            outcomes.append("ok")

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(waiter)
            await all_started.wait()
            await anyio.wait_all_tasks_blocked()
            refused = await burst(gateway, 50)
            gate.set()
        after = [outcome for _ in range(5) for outcome in await burst(gateway, 1)]  # one at a time: all fit
    assert refused == ["limited"] * 50
    assert outcomes == ["ok"] * 3
    assert after == ["ok"] * 5
    assert sum(1 for r in sink.rows if r.decision == "rate_limited") == 50


async def test_with_a_queue_wait_a_call_waits_for_a_free_slot_instead_of_failing() -> None:
    gate = anyio.Event()
    async with governed({"limits": {"concurrency": {"*": 1}, "queue_wait": 30}}, gate=gate) as gateway:
        results: list[str] = []

        async def call(name: str) -> None:
            result = await gateway.request("tools/call", {"name": name, "arguments": {}}, principal=ALICE)
            results.append(result["content"][0]["text"])

        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "alpha__wait")
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(call, "alpha__admin_reset")
            await anyio.wait_all_tasks_blocked()
            assert results == []
            gate.set()
    assert results == ["done", "reset"]


async def test_a_call_the_concurrency_cap_refuses_spends_no_token() -> None:
    gate = anyio.Event()
    limits = {"limits": {"per_principal": {"rate": 0.001, "burst": 3}, "concurrency": {"alpha": 1}}}
    async with governed(limits, clock=FakeClock(), gate=gate) as gateway:
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: gateway.request("tools/call", {"name": "alpha__wait", "arguments": {}}, principal=ALICE)
            )
            await anyio.wait_all_tasks_blocked()  # token 1 spent, the only slot held
            capped = await burst(gateway, 4)  # refused by the cap: no token spent
            gate.set()
        after = [outcome for _ in range(3) for outcome in await burst(gateway, 1)]
    assert capped == ["limited"] * 4
    assert after == ["ok", "ok", "limited"]  # tokens 2 and 3, then the bucket is empty


async def test_guessing_unknown_names_spends_the_principals_tokens() -> None:
    async with governed({"limits": {"per_principal": {"rate": 1, "burst": 3}}}) as gateway:
        outcomes = []
        for i in range(5):
            try:
                await gateway.request("tools/call", {"name": f"alpha__guess{i}"}, principal=ALICE)
            except RateLimited:
                outcomes.append("limited")
            except Exception:
                outcomes.append("not found")
    assert outcomes == ["not found"] * 3 + ["limited"] * 2


def test_a_bucket_refills_at_its_rate_up_to_its_burst_and_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    for _ in range(3):
        assert bucket.wait(0.0) == 0.0
        bucket.take()
    assert bucket.wait(0.0) == 0.5
    assert bucket.wait(0.25) == 0.25
    assert bucket.wait(100.0) == 0.0
    assert bucket.tokens == 3.0


async def test_beyond_max_buckets_the_oldest_principal_is_forgotten_not_the_newest() -> None:
    clock = FakeClock()
    stage = RateLimitStage(LimitSettings(per_principal=BucketSettings(rate=1, burst=1), max_buckets=100), clock)

    async def ok(ctx: Any) -> dict[str, Any]:
        return {}

    def call(who: str) -> Any:
        return stage(CallContext("tools/call", "t", {}, server="s", principal=Principal(who, "api_key")), ok)

    for i in range(100):
        await call(f"p{i}")
    with pytest.raises(RateLimited):
        await call("p99")
    await call("p100")  # evicts p0, the oldest
    await call("p0")  # a fresh bucket: forgotten principals start full
    with pytest.raises(RateLimited):
        await call("p50")


async def test_search_tools_is_audited_and_rate_limited_like_any_call(tmp_path: Any) -> None:
    """The meta-tool the gateway answers itself runs through the stage chain: each search is an audit row
    for its caller, and it spends the caller's tokens (each search costs encoder and index CPU)."""
    sink = ListSink()
    settings = {
        "exposure": "search",
        "retrieval": {"retriever": "bm25"},
        "store": {"path": str(tmp_path / "store.db")},
        "limits": {"per_principal": {"rate": 1, "burst": 2}},
    }
    async with governed(settings, sink=sink) as gateway, Client(FrontServer(gateway).server) as client:  # pyright: ignore[reportArgumentType]
        found = await client.call_tool("search_tools", {"query": "echo the text back"})
        await client.call_tool("search_tools", {"query": "look something up"})
        with pytest.raises(MCPError) as limited:
            await client.call_tool("search_tools", {"query": "echo"})
    assert found.structured_content is not None
    assert found.structured_content["tools"][0]["name"] == "alpha__echo"
    assert limited.value.code == RATE_LIMITED
    rows = [(r.tool, r.decision) for r in sink.rows if r.method == "tools/call"]
    assert rows == [("search_tools", "allowed"), ("search_tools", "allowed"), ("search_tools", "rate_limited")]


async def test_an_api_key_and_a_jwt_of_the_same_name_have_their_own_buckets() -> None:
    clock = FakeClock()
    async with governed({"limits": {"per_principal": {"rate": 1, "burst": 3}}}, clock=clock) as gateway:
        as_key = await burst(gateway, 5, Principal("alice", "api_key"))
        as_token = await burst(gateway, 5, Principal("alice", "jwt"))
    assert as_key.count("ok") == 3
    assert as_token.count("ok") == 3
