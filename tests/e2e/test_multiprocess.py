"""Two gateway worker processes on one port serve the modern path: an input-required round trip started on
one connection and finished on another (possibly another worker) succeeds, because the workers share the
sealing key (issue 3, multi-process). The upstream is one HTTP server shared by both workers: a stdio upstream
runs once per worker, and its own requestState is only valid in the process that issued it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import psutil
import pytest
from mcp import Client

pytestmark = pytest.mark.anyio

ROUNDS = 12


async def never_called(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    """Declares the elicitation capability; the rounds below are driven by hand."""
    raise AssertionError("the client must not be asked directly")


def argv(config: Path, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "switchyard.cli.main",
        "serve",
        "-c",
        str(config),
        "--http",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
    ]


async def first_round(url: str) -> types.InputRequiredResult:
    async with Client(url, mode="2026-07-28", elicitation_callback=never_called) as client:
        result = await client.session.call_tool("elicit__ask_name", {}, allow_input_required=True)
    assert isinstance(result, types.InputRequiredResult)
    return result


async def second_round(url: str, first: types.InputRequiredResult, name: str) -> str:
    assert first.input_requests is not None
    answers = {key: {"action": "accept", "content": {"name": name}} for key in first.input_requests}
    async with Client(url, mode="2026-07-28", elicitation_callback=never_called) as client:
        done = await client.session.call_tool(
            "elicit__ask_name",
            {},
            input_responses=answers,
            request_state=first.request_state,
            allow_input_required=True,
        )
    assert isinstance(done, types.CallToolResult)
    block = done.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def test_retries_on_new_connections_succeed_across_two_workers(peers: Any, tmp_path: Path) -> None:
    config = tmp_path / "servers.json"
    port = peers.free_port()
    with peers.http_fixture_server("elicit") as upstream:
        config.write_text(
            json.dumps(
                {
                    "mcpServers": {"elicit": {"url": upstream}},
                    "switchyard": {"auth": {"mode": "none"}, "store": {"path": str(tmp_path / "state.db")}},
                }
            )
        )
        with peers.running_http_server(argv(config, port), port, ready_timeout=90) as url:
            await run_rounds(url)


async def run_rounds(url: str) -> None:
    port = url.rsplit(":", 1)[1].split("/", maxsplit=1)[0]
    parent = next(
        p for p in psutil.process_iter(["cmdline"]) if f"127.0.0.1:{port}" in " ".join(p.info["cmdline"] or [])
    )
    workers = [c for c in parent.children() if "spawn_main" in " ".join(c.cmdline())]
    with anyio.fail_after(120):
        names = [f"n{i}" for i in range(ROUNDS)]
        answers = [await second_round(url, await first_round(url), name) for name in names]
    assert len(workers) == 2
    assert answers == [f"Hello, {name}!" for name in names]
