"""Faults, end to end: the real gateway process in front of real, misbehaving server processes.

The gateway runs as `python -m switchyard.cli.main serve -c <config>` (started through `/bin/sh`, which writes its
PID to a file and `exec`s it, so the test knows the gateway's PID) and is driven by the SDK's `mcp.Client` over
stdio, in `auto` (2026-07-28) and `legacy` (2025-11-25) mode where the era matters. The upstreams are the fixture
servers of tests/fixtures/servers/ (crash, hang, garbage, big, slow_start, changing, stderr_noise) plus small
shell wrappers for the process-tree and restart cases. The stop-signal tests start the gateway under a small
Python launcher that records its exit status, or (HTTP) as a direct child. Every wait is bounded:
`anyio.fail_after` around each step, polling with a deadline where the only signal is a process table, a log
file or a socket.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import TextContent

from switchyard.store.audit import SqliteAuditStore

pytestmark = pytest.mark.anyio

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


# --- one gateway, many misbehaving servers -----------------------------------------------------------------


def quitter_entry(directory: Path) -> dict[str, Any]:
    """A server that writes one line to stderr and exits 3 at start."""
    script = directory / "quitter.py"
    script.write_text("import sys\nsys.stderr.write('quitter: missing API key\\n')\nsys.exit(3)\n", encoding="utf-8")
    return {"command": sys.executable, "args": [str(script)]}


@pytest.fixture(scope="module", params=MODES)
async def zoo(
    request: pytest.FixtureRequest, anyio_backend: str, peers: Any, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningGateway]:
    """One gateway process (per front mode) in front of crashing, hanging, noisy, dead and healthy servers.

    Sharing it keeps the suite fast, and shows on the way that one server's fault never disturbs the gateway.
    """
    directory = tmp_path_factory.mktemp(f"zoo-{request.param}")
    servers = {
        "flaky": fixture(peers, "crash"),
        "stuck": fixture(peers, "hang", timeout=0.5),  # its own timeout
        "slowpoke": fixture(peers, "hang"),  # the gateway's default timeout (below)
        "waiter": fixture(peers, "progress", timeout=0.5),
        "frozen": fixture(peers, "fast", "role=frozen", timeout=0.5),
        "messy": fixture(peers, "garbage"),
        "chatty": fixture(peers, "stderr_noise"),
        "fast": fixture(peers, "fast", "role=fast", env={"SWITCHYARD_PROBE": "given"}),
        "nocommand": {"command": str(directory / "no-such-server")},
        "quitter": quitter_entry(directory),
    }
    cfg = write_config(directory / "gw.json", servers, timeouts={**FAST_SETTINGS["timeouts"], "call": 1.5})
    # A deadline on start-up only: a cancel scope must enclose the client's task groups, and must not fire
    # while the tests that share the gateway run.
    with anyio.CancelScope(deadline=anyio.current_time() + 2 * STEP) as scope:
        async with gateway(cfg, request.param) as gw:
            names = tool_names(await gw.client.list_tools())  # returns once every server had its first try
            assert "fast__echo" in names
            scope.deadline = math.inf
            yield gw
    if scope.cancelled_caught:
        raise TimeoutError(f"the gateway did not start within {2 * STEP:g} s")


async def test_dead_servers_do_not_stop_the_live_ones(zoo: RunningGateway) -> None:
    with anyio.fail_after(STEP):
        names = tool_names(await zoo.client.list_tools())
        for server in ("flaky", "stuck", "slowpoke", "waiter", "frozen", "messy", "chatty", "fast"):
            assert any(n.startswith(f"{server}__") for n in names), server
        assert not any(n.startswith(("nocommand", "quitter")) for n in names)
        assert text_of(await zoo.client.call_tool("fast__echo", {"text": "alive"})) == "alive"
        with pytest.raises(MCPError):  # a dead server's tools are unknown, not half-there
            await zoo.client.call_tool("quitter__anything", {})


async def test_a_server_gets_the_environment_it_was_given_and_nothing_from_the_guard(zoo: RunningGateway) -> None:
    environ = server_process(zoo, "role=fast").environ()
    assert environ["SWITCHYARD_PROBE"] == "given"
    # The guard is a Python process: its C-locale coercion (PEP 538) must not leak LC_CTYPE into the server.
    assert "LC_CTYPE" not in environ
    assert set(environ) <= {"HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "SWITCHYARD_PROBE"}, environ


async def test_a_server_that_keeps_failing_is_retried_with_growing_delays(zoo: RunningGateway) -> None:
    log = await zoo.wait_for_log("server nocommand: down; retrying in 0.5 s")
    delays = [line.rsplit("retrying in ", 1)[1] for line in log.splitlines() if "server nocommand: down;" in line]
    assert delays[:4] == ["0.1 s", "0.2 s", "0.4 s", "0.5 s"], delays
    assert "cannot start" in log  # the reason is logged (the guard's message, relayed from stderr)


async def test_a_crash_mid_call_gives_an_error_result_naming_the_server_and_it_restarts(zoo: RunningGateway) -> None:
    client = zoo.client
    with anyio.fail_after(STEP):
        first_pid = int(text_of(await client.call_tool("flaky__pid", {})))

        crashed = await client.call_tool("flaky__crash_now", {})
        assert crashed.is_error
        assert "'flaky'" in text_of(crashed), text_of(crashed)

        # The other servers never noticed.
        assert text_of(await client.call_tool("fast__echo", {"text": "still here"})) == "still here"

        # The crashed server is restarted (a new process) and serves again, with its tools listed.
        await eventually_ok(client, "flaky__ok", {}, timeout=10)
        assert int(text_of(await client.call_tool("flaky__pid", {}))) != first_pid
        assert "flaky__crash_now" in tool_names(await client.list_tools())
        assert "server flaky: down; retrying in 0.1 s" in zoo.log_text()

        # Crashing again soon after the restart: the backoff grows instead of starting over.
        again = await client.call_tool("flaky__crash_now", {})
        assert again.is_error
        await zoo.wait_for_log("server flaky: down; retrying in 0.2 s")
        await eventually_ok(client, "flaky__ok", {}, timeout=10)


async def test_a_call_that_never_returns_times_out_with_a_clear_error_and_others_go_on(zoo: RunningGateway) -> None:
    elapsed: dict[str, float] = {}
    results: dict[str, Any] = {}

    async def timed(tool: str, arguments: dict[str, Any]) -> None:
        started = time.monotonic()
        results[tool] = await zoo.client.call_tool(tool, arguments)
        elapsed[tool] = time.monotonic() - started

    with anyio.fail_after(STEP):
        async with anyio.create_task_group() as tg:
            tg.start_soon(timed, "stuck__hang", {})
            tg.start_soon(timed, "slowpoke__hang", {})
            tg.start_soon(timed, "fast__echo", {"text": "quick"})
        # The calls that never returned, each with its own timeout, both naming their server.
        for tool, server, seconds in (("stuck__hang", "stuck", 0.5), ("slowpoke__hang", "slowpoke", 1.5)):
            assert results[tool].is_error, tool
            message = text_of(results[tool])
            assert f"'{server}'" in message, message
            assert f"no answer within {seconds:g} s" in message, message
            assert seconds - 0.05 <= elapsed[tool] < seconds + 2.0, (tool, elapsed[tool])
        # A call to another server was not held up.
        assert text_of(results["fast__echo"]) == "quick"
        assert elapsed["fast__echo"] < 1.0, elapsed  # not held up behind the 1.5 s timeout
        # Both timed-out servers keep serving.
        assert text_of(await zoo.client.call_tool("stuck__ok", {})) == "ok"
        assert text_of(await zoo.client.call_tool("slowpoke__ok", {})) == "ok"


async def test_a_timed_out_call_is_cancelled_at_the_server(zoo: RunningGateway) -> None:
    marker = zoo.log.with_name(f"marker-{os.urandom(4).hex()}")
    with anyio.fail_after(STEP):
        result = await zoo.client.call_tool("waiter__wait_for_cancel", {"marker": str(marker)})
        assert result.is_error
        assert "no answer within 0.5 s" in text_of(result)
        while not (marker.exists() and marker.read_text() == "cancelled"):  # noqa: ASYNC110 - a file is the signal
            await anyio.sleep(0.02)


async def test_a_wedged_server_times_out_every_call_without_blocking_the_gateway(zoo: RunningGateway) -> None:
    frozen = server_process(zoo, "role=frozen")
    with anyio.fail_after(STEP):
        assert text_of(await zoo.client.call_tool("frozen__echo", {"text": "x"})) == "x"
        frozen.suspend()  # SIGSTOP: it reads nothing and answers nothing, as a wedged server
        try:
            for _ in range(2):
                result = await zoo.client.call_tool("frozen__echo", {"text": "x"})
                assert result.is_error
                assert "'frozen'" in text_of(result)
                assert "no answer within 0.5 s" in text_of(result)
            started = time.monotonic()
            assert text_of(await zoo.client.call_tool("fast__echo", {"text": "fine"})) == "fine"
            assert time.monotonic() - started < 1.0
        finally:
            frozen.resume()
        # Thawed, it serves again; the late answers to the timed-out calls were dropped on the way.
        assert text_of(await zoo.client.call_tool("frozen__echo", {"text": "back"})) == "back"


async def test_garbage_on_a_servers_stdout_does_not_break_it(zoo: RunningGateway) -> None:
    with anyio.fail_after(STEP):
        for i in range(3):
            assert text_of(await zoo.client.call_tool("messy__ok", {})) == "ok"
            assert text_of(await zoo.client.call_tool("messy__noisy", {"text": f"n{i}"})) == f"n{i}"
    assert zoo.log_text().count("server messy: up") == 1  # never dropped and reconnected


async def test_stderr_of_a_stdio_server_goes_to_the_gateway_log_with_its_name(zoo: RunningGateway) -> None:
    with anyio.fail_after(STEP):
        await zoo.wait_for_log("[chatty] stderr_noise: starting")
        assert text_of(await zoo.client.call_tool("chatty__noise", {"lines": 3})) == "3"
        log = await zoo.wait_for_log("[chatty] stderr_noise: line 3")
    assert "[chatty] stderr_noise: line 1" in log
    assert "[chatty] stderr_noise: line 2" in log
    assert "[quitter] quitter: missing API key" in log


async def test_an_http_server_that_crashes_mid_call_or_refuses_connections_is_reported_by_name(
    peers: Any, tmp_path: Path
) -> None:
    with peers.http_fixture_server("crash") as url:
        refused = f"http://127.0.0.1:{peers.free_port()}/mcp"
        cfg = write_config(
            tmp_path / "gw.json",
            {"web": {"url": url}, "refused": {"url": refused}},
            restart={**FAST_SETTINGS["restart"], "keep_listed": 1},
        )
        with anyio.fail_after(STEP):
            async with gateway(cfg) as gw:
                names = tool_names(await gw.client.list_tools())
                assert {"web__ok", "web__crash_now"} <= names
                assert not any(n.startswith("refused__") for n in names)
                crashed = await gw.client.call_tool("web__crash_now", {})
                assert crashed.is_error
                assert "'web'" in text_of(crashed), text_of(crashed)
                # Nobody restarts a remote server: it is reported down and retried; its tools stay listed for
                # `restart.keep_listed`, calls meanwhile say it is being reconnected, and then its tools go away.
                await gw.wait_for_log("server web: down; retrying in")
                meanwhile = await gw.client.call_tool("web__ok", {})
                assert meanwhile.is_error
                assert "'web'" in text_of(meanwhile), text_of(meanwhile)
                await gw.wait_for_log("server web: down for more than 1 s")
                assert "web__ok" not in tool_names(await gw.client.list_tools())
                assert "server refused: All connection attempts failed" in gw.log_text()


# --- restarts keep the lists --------------------------------------------------------------------------------


def breakable_crash_entry(peers: Any, broken: Path) -> dict[str, Any]:
    """The crash fixture, started by a shell that refuses to start it (exit 3) while the file `broken` exists."""
    crash = peers.fixture_server("crash")
    command = " ".join(f"'{part}'" for part in (crash.command, *crash.args))
    script = f"if [ -e '{broken}' ]; then echo 'flaky: broken' >&2; exit 3; fi; exec {command}"
    return {"command": "/bin/sh", "args": ["-c", script]}


async def test_a_crashed_server_keeps_its_tools_listed_while_it_restarts_and_clients_hear_no_list_changed(
    peers: Any, tmp_path: Path
) -> None:
    notified = Notifications()
    cfg = write_config(
        tmp_path / "gw.json",
        {"flaky": fixture(peers, "crash"), "fast": fixture(peers, "fast")},
        restart={"initial": 2.0, "maximum": 2.0},  # a restart window long enough to call into
    )
    with anyio.fail_after(STEP):
        async with gateway(cfg, "legacy", message_handler=notified) as gw:
            client = gw.client
            listed = tool_names(await client.list_tools())
            assert {"flaky__ok", "flaky__crash_now", "fast__echo"} <= listed
            first_pid = int(text_of(await client.call_tool("flaky__pid", {})))
            seen, log_before = notified.count, len(gw.log_text())

            crashed = await client.call_tool("flaky__crash_now", {})
            assert crashed.is_error
            assert "'flaky'" in text_of(crashed), text_of(crashed)
            await gw.wait_for_log("server flaky: down; retrying in 2.0 s")

            # While it restarts: still listed, and a call gets an error result that names it and says why.
            assert tool_names(await client.list_tools()) == listed
            meanwhile = await client.call_tool("flaky__ok", {})
            assert meanwhile.is_error
            assert "upstream server 'flaky' is unavailable" in text_of(meanwhile), text_of(meanwhile)
            assert "restarting it" in text_of(meanwhile), text_of(meanwhile)

            await eventually_ok(client, "flaky__ok", {}, timeout=10)
            assert int(text_of(await client.call_tool("flaky__pid", {}))) != first_pid
            assert tool_names(await client.list_tools()) == listed
            # The same lists came back: nothing changed for the client, so it was told nothing.
            assert notified.count == seen
            assert "catalog changed" not in gw.log_text()[log_before:]


async def test_a_crashed_server_that_stays_down_is_unlisted_after_keep_listed_and_listed_again_when_back(
    peers: Any, tmp_path: Path
) -> None:
    notified = Notifications()
    broken = tmp_path / "broken"
    cfg = write_config(
        tmp_path / "gw.json",
        {"flaky": breakable_crash_entry(peers, broken), "fast": fixture(peers, "fast")},
        restart={"initial": 0.1, "maximum": 0.5, "keep_listed": 1.5},
    )
    with anyio.fail_after(STEP):
        async with gateway(cfg, "legacy", message_handler=notified) as gw:
            client = gw.client
            assert "flaky__ok" in tool_names(await client.list_tools())
            seen = notified.count
            broken.touch()  # from now on every restart fails
            assert (await client.call_tool("flaky__crash_now", {})).is_error

            await notified.until(client, lambda names: "flaky__ok" not in names, since=seen)
            log = await gw.wait_for_log("server flaky: down for more than 1.5 s")
            assert "[flaky] flaky: broken" in log  # it was retried meanwhile, and failed
            assert "fast__echo" in tool_names(await client.list_tools())
            with pytest.raises(MCPError, match="flaky__ok"):  # unknown now, like any server that is down
                await client.call_tool("flaky__ok", {})

            seen = notified.count
            broken.unlink()
            await notified.until(client, lambda names: "flaky__ok" in names, since=seen)
            await eventually_ok(client, "flaky__ok", {}, timeout=10)


# --- slow start ---------------------------------------------------------------------------------------------


@pytest.mark.xfail(
    strict=True,
    reason="the gateway no longer makes a call wait for slow servers (server/mcp.py _settled_for), but the SDK "
    "client lists tools before calling one it has not listed, and a list made right after start-up waits for "
    "servers still starting (by design): this client-side list is what still waits",
)
async def test_a_slow_server_is_listed_if_it_comes_up_within_the_startup_wait_and_blocks_no_other_call(
    peers: Any, tmp_path: Path
) -> None:
    cfg = write_config(
        tmp_path / "gw.json", {"sleepy": fixture(peers, "slow_start", "3"), "fast": fixture(peers, "fast")}
    )
    with anyio.fail_after(STEP):
        async with gateway(cfg, "auto") as gw:
            await gw.wait_for_log("server fast: up")
            assert "server sleepy: up" not in gw.log_text()
            # A call to a server that is up does not wait for the slow one...
            started = time.monotonic()
            assert text_of(await gw.client.call_tool("fast__echo", {"text": "now"})) == "now"
            assert time.monotonic() - started < 1.0
            # ... and a list made before the slow server is up waits for it (within the start-up wait).
            assert "server sleepy: up" not in gw.log_text()
            names = tool_names(await gw.client.list_tools())
            assert {"sleepy__ok", "fast__echo", "fast__add"} <= names
            assert text_of(await gw.client.call_tool("sleepy__ok", {})) == "ok"


async def test_the_startup_wait_is_counted_from_start_up_not_from_each_request(peers: Any, tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "gw.json",
        {"sleepy": fixture(peers, "slow_start", "6"), "fast": fixture(peers, "fast")},
        timeouts={**FAST_SETTINGS["timeouts"], "startup": 1.0},
    )
    with anyio.fail_after(STEP):
        async with gateway(cfg, "auto") as gw:
            await gw.wait_for_log("server fast: up")
            await gw.client.list_tools()  # at least the start-up wait has passed once this returns
            started = time.monotonic()
            assert "fast__echo" in tool_names(await gw.client.list_tools())
            assert time.monotonic() - started < 0.5


async def test_a_server_slower_than_the_startup_wait_appears_when_it_comes_up(peers: Any, tmp_path: Path) -> None:
    notified = Notifications()
    cfg = write_config(
        tmp_path / "gw.json",
        {"sleepy": fixture(peers, "slow_start", "5"), "fast": fixture(peers, "fast")},
        timeouts={**FAST_SETTINGS["timeouts"], "startup": 0.3},
    )
    with anyio.fail_after(STEP):
        async with gateway(cfg, "legacy", message_handler=notified) as gw:
            await gw.wait_for_log("server fast: up")
            seen = notified.count
            first = tool_names(await gw.client.list_tools())  # the start-up wait (0.3 s) is over
            assert "fast__echo" in first
            assert "sleepy__ok" not in first
            await notified.until(gw.client, lambda names: "sleepy__ok" in names, since=seen)
            assert text_of(await gw.client.call_tool("sleepy__ok", {})) == "ok"


# --- changing tool lists -----------------------------------------------------------------------------------


class Notifications:
    """A message handler for a legacy client that counts `notifications/tools/list_changed`."""

    def __init__(self) -> None:
        self.count = 0
        self._event = anyio.Event()

    async def __call__(self, message: Any) -> None:
        if getattr(getattr(message, "root", message), "method", None) == "notifications/tools/list_changed":
            self.count += 1
            self._event.set()
            self._event = anyio.Event()

    async def until(
        self, client: Client, condition: Callable[[set[str]], bool], *, since: int, timeout: float = 10.0
    ) -> None:
        """Wait until more than `since` notifications arrived and the tool list satisfies `condition`."""
        with anyio.fail_after(timeout):
            while True:
                event = self._event  # taken before listing: a notification sent after the list sets it
                if self.count > since and condition(tool_names(await client.list_tools())):
                    return
                await event.wait()


LEGACY_CHANGING = '''
"""A legacy-era (mcp 1.x) server whose tool list changes: add_tool(name) adds an echo tool and announces it."""
from mcp.server.fastmcp import Context, FastMCP

server = FastMCP("old_changing")


@server.tool()
async def add_tool(name: str, ctx: Context) -> str:
    def dynamic(text: str = "") -> str:
        return f"{name}: {text}"

    server.add_tool(dynamic, name=name)
    await ctx.session.send_tool_list_changed()
    return f"added {name}"


@server.tool()
async def remove_tool(name: str, ctx: Context) -> str:
    server.remove_tool(name)
    await ctx.session.send_tool_list_changed()
    return f"removed {name}"


server.run()
'''


def changing_servers(peers: Any, directory: Path) -> dict[str, dict[str, Any]]:
    """A modern upstream (mcp 2.3) and a legacy one (mcp 1.x) that both change their tools at run time."""
    script = directory / "old_changing.py"
    script.write_text(LEGACY_CHANGING, encoding="utf-8")
    return {
        "shifty": fixture(peers, "changing"),
        "oldshifty": {"command": str(peers.legacy_python()), "args": [str(script)]},
    }


async def test_a_legacy_client_hears_list_changed_when_an_upstream_changes_its_tools(
    peers: Any, tmp_path: Path
) -> None:
    notified = Notifications()
    cfg = write_config(tmp_path / "gw.json", changing_servers(peers, tmp_path))
    with anyio.fail_after(STEP):
        async with gateway(cfg, "legacy", message_handler=notified) as gw:
            client = gw.client
            assert client.protocol_version != MODERN
            assert {"shifty__add_tool", "oldshifty__add_tool"} <= tool_names(await client.list_tools())
            for server in ("shifty", "oldshifty"):
                tool = f"{server}__zap"
                seen = notified.count
                assert text_of(await client.call_tool(f"{server}__add_tool", {"name": "zap"})) == "added zap"
                await notified.until(client, lambda names, tool=tool: tool in names, since=seen)
                assert text_of(await client.call_tool(tool, {"text": "hi"})) == "zap: hi"
                seen = notified.count
                assert text_of(await client.call_tool(f"{server}__remove_tool", {"name": "zap"})) == "removed zap"
                await notified.until(client, lambda names, tool=tool: tool not in names, since=seen)


async def test_a_modern_client_hears_list_changed_on_its_listen_stream(peers: Any, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "gw.json", changing_servers(peers, tmp_path))
    with anyio.fail_after(STEP):
        async with gateway(cfg, "auto") as gw:
            client = gw.client
            assert client.protocol_version == MODERN
            assert {"shifty__add_tool", "oldshifty__add_tool"} <= tool_names(await client.list_tools())
            async with client.listen(tools_list_changed=True) as sub:
                events = sub.__aiter__()
                for server in ("shifty", "oldshifty"):
                    tool = f"{server}__zap"
                    assert text_of(await client.call_tool(f"{server}__add_tool", {"name": "zap"})) == "added zap"
                    while tool not in tool_names(await client.list_tools()):
                        assert type(await events.__anext__()).__name__ == "ToolsListChanged"
                    assert text_of(await client.call_tool(tool, {"text": "hi"})) == "zap: hi"
                    text = text_of(await client.call_tool(f"{server}__remove_tool", {"name": "zap"}))
                    assert text == "removed zap"
                    while tool in tool_names(await client.list_tools()):
                        assert type(await events.__anext__()).__name__ == "ToolsListChanged"


# --- a 20 MB result ----------------------------------------------------------------------------------------


async def test_a_20_mb_result_passes_through_the_stdio_front_intact(peers: Any, tmp_path: Path) -> None:
    size = 20 * 1024 * 1024
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789\n"
    reps, rest = divmod(size, len(alphabet))
    cfg = write_config(tmp_path / "gw.json", {"big": fixture(peers, "big")})
    with anyio.fail_after(STEP * 2):
        async with gateway(cfg) as gw:
            result = await gw.client.call_tool("big__big", {}, read_timeout_seconds=STEP * 2)
            assert not result.is_error
            assert len(result.content) == 1
            got = text_of(result)
            assert len(got) == size
            assert got == alphabet * reps + alphabet[:rest]
            assert text_of(await gw.client.call_tool("big__ok", {})) == "ok"


# --- no orphans --------------------------------------------------------------------------------------------


def stubborn_entry(peers: Any, directory: Path) -> dict[str, Any]:
    """A server that ignores SIGTERM and leaves a grandchild (also ignoring SIGTERM) running in the background."""
    fast = peers.fixture_server("fast")
    script = f"trap '' TERM; sleep 300 & exec '{fast.command}' '{fast.args[0]}' role=stubborn"
    return {"command": "/bin/sh", "args": ["-c", script]}


def npx_like_entry(peers: Any) -> dict[str, Any]:
    """A node server started the way npx starts one: a shell that runs node as its child (not exec)."""
    everything = peers.everything_server()
    command = " ".join(f"'{part}'" for part in (everything.command, *everything.args))
    return {"command": "/bin/sh", "args": ["-c", f"{command}; echo node exited"]}


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def wait_all_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Poll until none of `processes` is alive or `timeout` passes; returns the survivors."""
    deadline = time.monotonic() + timeout
    while (survivors := [p for p in processes if alive(p)]) and time.monotonic() < deadline:  # noqa: ASYNC110
        await anyio.sleep(0.05)
    return survivors


def describe(processes: list[psutil.Process]) -> list[str]:
    out: list[str] = []
    for p in processes:
        try:
            out.append(f"{p.pid}: {' '.join(p.cmdline())[:160]}")
        except psutil.Error:
            out.append(f"{p.pid}: ?")
    return out


def ignored_signals(process: psutil.Process) -> int:
    """The process's mask of ignored signals (SigIgn in /proc/PID/status)."""
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return int(line.split()[1], 16)
    raise AssertionError("no SigIgn line")


@pytest.mark.parametrize("sig", [None, signal.SIGTERM, signal.SIGKILL], ids=["client-leaves", "SIGTERM", "SIGKILL"])
async def test_no_server_process_outlives_the_gateway(peers: Any, tmp_path: Path, sig: signal.Signals | None) -> None:
    cfg = write_config(
        tmp_path / "gw.json",
        {
            "fast": fixture(peers, "fast", "role=plain"),
            "frozen": fixture(peers, "fast", "role=frozen"),
            "stubborn": stubborn_entry(peers, tmp_path),
            "everything": npx_like_entry(peers),
        },
        timeouts={**FAST_SETTINGS["timeouts"], "shutdown_grace": 1.0},
    )
    descendants: list[psutil.Process] = []
    try:
        with anyio.fail_after(STEP):
            async with gateway(cfg) as gw:
                names = tool_names(await gw.client.list_tools())
                assert {"fast__echo", "frozen__echo", "stubborn__echo", "everything__echo"} <= names, names
                gateway_process = psutil.Process(gw.pid)
                descendants = gateway_process.children(recursive=True)
                commands = " ".join(command_line(p) for p in descendants)
                assert "sleep 300" in commands  # a grandchild
                assert "server-everything" in commands  # node, under a shell
                # Servers start with default signal dispositions: the guard is Python, which ignores SIGPIPE and
                # SIGXFSZ, and ignored signals survive exec. (The shell ignores SIGTERM, as told, and SIGINT and
                # SIGQUIT for its background job, as POSIX says.)
                ignored = ignored_signals(server_process(gw, "sleep 300"))
                assert ignored & (1 << (signal.SIGTERM - 1))
                assert not ignored & (1 << (signal.SIGPIPE - 1) | 1 << (signal.SIGXFSZ - 1)), hex(ignored)
                server_process(gw, "role=frozen").suspend()  # only SIGKILL ends a stopped process
                if sig is not None:
                    os.kill(gw.pid, sig)
                    survivors = await wait_all_gone(descendants, timeout=10.0)
                    assert not survivors, describe(survivors)
            # The client left (stdin closed): the gateway stops every server (close stdin, grace, kill) and exits.
            survivors = await wait_all_gone([gateway_process, *descendants], timeout=15.0)
            assert not survivors, describe(survivors)
    finally:
        for process in descendants:  # only processes this test started, identified by PID and start time
            if alive(process):
                process.kill()


# --- stopping on a signal ----------------------------------------------------------------------------------

LAUNCHER = """
import os, subprocess, sys

pidfile, codefile, *command = sys.argv[1:]
child = subprocess.Popen(command)  # stdin and stdout are the client's pipes, inherited
with open(pidfile, "w") as f:
    f.write(str(child.pid))
code = child.wait()
with open(codefile + ".part", "w") as f:
    f.write(str(code))
os.replace(codefile + ".part", codefile)
"""


def stop_settings(directory: Path) -> dict[str, Any]:
    """A store (and with it the audit log) in `directory`, and a drain long enough for a one-second call."""
    return {"store": {"path": str(directory / "state.db")}, "timeouts": {**FAST_SETTINGS["timeouts"], "drain": 10}}


def audited_calls(directory: Path) -> list[tuple[str, bool | None]]:
    """(tool, is_error) of every tools/call row in the audit log the gateway left in `directory`."""
    store = SqliteAuditStore(directory / "state.db")
    return [(row.tool, row.is_error) for row in store.query() if row.method == "tools/call"]


def written_code(codefile: Path) -> int | None:
    return int(codefile.read_text()) if codefile.exists() else None


async def exit_code(codefile: Path, timeout: float) -> int:
    """Poll until the launcher wrote the gateway's exit status (it is the gateway's parent, not ours)."""
    with anyio.fail_after(timeout):
        while (code := written_code(codefile)) is None:  # noqa: ASYNC110 - a file is the only signal
            await anyio.sleep(0.05)
    return code


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def stopped_by(log: str, sig: signal.Signals) -> list[str]:
    return [line for line in log.splitlines() if f"received {sig.name}: stopping" in line]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
async def test_a_signal_stops_serve_on_stdio_gracefully_with_exit_0_and_no_server_left(
    peers: Any, tmp_path: Path, sig: signal.Signals
) -> None:
    cfg = write_config(
        tmp_path / "gw.json",
        {
            "fast": fixture(peers, "fast"),
            "counter": fixture(peers, "progress"),
            "stubborn": stubborn_entry(peers, tmp_path),
        },
        **stop_settings(tmp_path),
    )
    launcher = tmp_path / "launcher.py"
    launcher.write_text(LAUNCHER, encoding="utf-8")
    pidfile, codefile, log = tmp_path / "gw.pid", tmp_path / "gw.code", tmp_path / "gw.log"
    argv = [
        str(launcher),
        str(pidfile),
        str(codefile),
        sys.executable,
        "-m",
        "switchyard.cli.main",
        "serve",
        "-c",
        str(cfg),
    ]
    env = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else None
    descendants: list[psutil.Process] = []
    try:
        with anyio.fail_after(STEP), log.open("w", encoding="utf-8") as errlog:
            params = StdioServerParameters(command=sys.executable, args=argv, env=env)
            async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=STEP, cache=None) as client:  # pyright: ignore[reportArgumentType]
                assert text_of(await client.call_tool("fast__echo", {"text": "one"})) == "one"
                assert text_of(await client.call_tool("fast__echo", {"text": "two"})) == "two"
                pid = int(pidfile.read_text())
                descendants = psutil.Process(pid).children(recursive=True)
                assert len(descendants) >= 6  # three guards, three servers (and the stubborn one's grandchild)

                in_flight = anyio.Event()
                results: dict[str, Any] = {}

                async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                    in_flight.set()

                async def slow_call() -> None:
                    arguments = {"steps": 4, "delay": 0.25}
                    results["count"] = await client.call_tool(
                        "counter__count", arguments, progress_callback=on_progress
                    )

                async with anyio.create_task_group() as tg:
                    tg.start_soon(slow_call)
                    await in_flight.wait()
                    os.kill(pid, sig)
                    signalled = time.monotonic()
                    while not stopped_by(log.read_text(), sig):  # noqa: ASYNC110 - the log is the only signal
                        await anyio.sleep(0.02)
                    # Once stopping, a new call is refused with a result that says so; the one in flight finishes.
                    refused = await client.call_tool("fast__echo", {"text": "late"})
                    assert refused.is_error
                    assert "the gateway is shutting down" in text_of(refused)
                assert text_of(results["count"]) == "counted 4"
                assert await exit_code(codefile, timeout=15) == 0
                assert time.monotonic() - signalled < 8.0  # the call's last second, then the servers' shutdown
        survivors = await wait_all_gone(descendants, timeout=10.0)
        assert not survivors, describe(survivors)
    finally:
        for process in descendants:  # only processes this test started, identified by PID and start time
            if alive(process):
                process.kill()
    text = log.read_text()
    assert len(stopped_by(text, sig)) == 1, text
    assert "Traceback" not in text, text
    calls = audited_calls(tmp_path)
    assert calls.count(("fast__echo", False)) == 2, calls
    assert ("counter__count", False) in calls, calls


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
async def test_a_signal_stops_serve_over_http_gracefully_with_exit_0_and_no_server_left(
    peers: Any, tmp_path: Path, sig: signal.Signals
) -> None:
    cfg = write_config(
        tmp_path / "gw.json",
        {
            "fast": fixture(peers, "fast"),
            "counter": fixture(peers, "progress"),
            "stubborn": stubborn_entry(peers, tmp_path),
        },
        auth={"mode": "none"},
        **stop_settings(tmp_path),
    )
    port = peers.free_port()
    log = tmp_path / "gw.log"
    argv = [sys.executable, "-m", "switchyard.cli.main", "serve", "-c", str(cfg), "--http", f"127.0.0.1:{port}"]
    descendants: list[psutil.Process] = []
    with log.open("w", encoding="utf-8") as errlog:
        process = await anyio.open_process(argv, stdin=subprocess.DEVNULL, stdout=errlog, stderr=errlog)
    try:
        with anyio.fail_after(STEP):
            while not port_open(port):  # the socket is the only signal
                assert process.returncode is None, log.read_text()
                await anyio.sleep(0.05)
            url = f"http://127.0.0.1:{port}/mcp"
            async with Client(url, read_timeout_seconds=STEP) as client:  # pyright: ignore[reportArgumentType]
                assert text_of(await client.call_tool("fast__echo", {"text": "one"})) == "one"
                assert text_of(await client.call_tool("fast__echo", {"text": "two"})) == "two"
                descendants = psutil.Process(process.pid).children(recursive=True)
                assert len(descendants) >= 6  # three guards, three servers (and the stubborn one's grandchild)

                in_flight = anyio.Event()
                results: dict[str, Any] = {}

                async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                    in_flight.set()

                async def slow_call() -> None:
                    arguments = {"steps": 4, "delay": 0.25}
                    results["count"] = await client.call_tool(
                        "counter__count", arguments, progress_callback=on_progress
                    )

                async with anyio.create_task_group() as tg:
                    tg.start_soon(slow_call)
                    await in_flight.wait()
                    process.send_signal(sig)
                    signalled = time.monotonic()
                assert text_of(results["count"]) == "counted 4"  # the call in flight finished
            assert await process.wait() == 0
            assert time.monotonic() - signalled < 8.0  # the call's last second, then the servers' shutdown
        survivors = await wait_all_gone(descendants, timeout=10.0)
        assert not survivors, describe(survivors)
    finally:
        if process.returncode is None:
            process.kill()
        with anyio.CancelScope(shield=True):
            await process.aclose()
        for child in descendants:  # only processes this test started, identified by PID and start time
            if alive(child):
                child.kill()
    text = log.read_text()
    assert len(stopped_by(text, sig)) == 1, text
    assert "Traceback" not in text, text
    calls = audited_calls(tmp_path)
    assert ("fast__echo", False) in calls, calls
    assert ("counter__count", False) in calls, calls
