"""The real gateway process for end-to-end fault and shutdown tests: configs of fixture servers, `switchyard
serve` started as a subprocess with its PID known, an SDK client on its stdio front, and process-table helpers.

Used by test_faults.py (misbehaving servers) and test_shutdown.py (no orphans, stopping on a signal).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import psutil
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import TextContent

MODES = ["auto", "legacy"]
MODERN = "2026-07-28"
STEP = 30.0
"""Upper bound on any one step; the steps themselves take well under a second unless stated."""

FAST_SETTINGS: dict[str, Any] = {
    "restart": {"initial": 0.1, "maximum": 0.5},
    "timeouts": {"connect": 30, "startup": 20, "shutdown_grace": 0.5},  # generous: a loaded CI box is slow
}


# --- helpers -----------------------------------------------------------------------------------------------


def text_of(result: Any) -> str:
    """The text of a result's first content block."""
    block = result.content[0]
    assert isinstance(block, TextContent), block
    return block.text


def fixture(peers: Any, name: str, *args: str, **extra: Any) -> dict[str, Any]:
    """An `mcpServers` entry running a fixture server, with extra keys (timeout, env...)."""
    return {**peers.server_entry(peers.fixture_server(name, *args)), **extra}


def write_config(path: Path, servers: Mapping[str, Mapping[str, Any]], **settings: Any) -> Path:
    merged = {**FAST_SETTINGS, **settings}
    path.write_text(json.dumps({"mcpServers": dict(servers), "switchyard": merged}), encoding="utf-8")
    return path


@dataclass
class RunningGateway:
    """A gateway process and the SDK client connected to its stdio front."""

    client: Client
    pid: int
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    async def wait_for_log(self, needle: str, timeout: float = 20.0) -> str:
        """Poll the gateway's log (its stderr) until `needle` appears; returns the log."""
        with anyio.fail_after(timeout):
            while needle not in (text := self.log_text()):  # noqa: ASYNC110 - a file is the only signal
                await anyio.sleep(0.05)
        return text


@asynccontextmanager
async def gateway(
    config: Path, mode: str = "auto", *, message_handler: Callable[[Any], Awaitable[None]] | None = None
) -> AsyncIterator[RunningGateway]:
    """Run `switchyard serve -c config` as a subprocess and connect an SDK client to it."""
    pidfile = config.with_suffix(".pid")
    log = config.with_suffix(".log")
    script = 'echo $$ > "$0"; exec "$1" -m switchyard.cli.main serve -c "$2"'
    # The SDK's default environment, plus the tests' PYTHONPATH when there is one (so `PYTHONPATH=<tree>/src
    # pytest ...` tests that tree's gateway, not whichever one the virtualenv has installed).
    env = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else None
    params = StdioServerParameters(
        command="/bin/sh", args=["-c", script, str(pidfile), sys.executable, str(config)], env=env
    )
    with log.open("w", encoding="utf-8") as errlog:
        transport = stdio_client(params, errlog=errlog)
        async with Client(
            transport,  # pyright: ignore[reportArgumentType]
            mode=mode,  # pyright: ignore[reportArgumentType]
            read_timeout_seconds=STEP,
            message_handler=message_handler,
            cache=None,
        ) as client:
            yield RunningGateway(client, int(pidfile.read_text().strip()), log)


async def eventually_ok(client: Client, tool: str, arguments: dict[str, Any], timeout: float) -> Any:
    """Call `tool` until it succeeds (errors while a server restarts are expected); returns the result."""
    last: object = None
    with anyio.fail_after(timeout):
        while True:
            try:
                result = await client.call_tool(tool, arguments)
                if not result.is_error:
                    return result
                last = text_of(result)
            except MCPError as exc:
                last = exc
            await anyio.sleep(0.1)
    raise AssertionError(last)  # pragma: no cover - fail_after raises first


def tool_names(result: Any) -> set[str]:
    return {t.name for t in result.tools}


def command_line(p: psutil.Process) -> str:
    """`p`'s command line, or "" when it has exited meanwhile (the zoo's quitter restarts all the time)."""
    try:
        return " ".join(p.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return ""


def server_process(gw: RunningGateway, marker: str) -> psutil.Process:
    """The one descendant of the gateway whose command line contains `marker` (a server, not its guard)."""
    found: list[psutil.Process] = []
    for _ in range(50):
        found = []
        for p in psutil.Process(gw.pid).children(recursive=True):
            line = command_line(p)
            if marker in line and "reaper.py" not in line:
                found.append(p)
        if len(found) == 1:
            return found[0]
        time.sleep(0.1)
    raise AssertionError([command_line(p) for p in found])
