"""Shutdown, end to end: no server process outlives the gateway (client leaves, SIGTERM, SIGKILL), and a stop
signal ends `serve` gracefully (in-flight calls drained, exit 0) on stdio and over HTTP.

The gateway and its servers are real processes (stdio_gateway.py). The stop-signal tests start the gateway
under a small Python launcher that records its exit status, or (HTTP) as a direct child. Every wait is
bounded: `anyio.fail_after` around each step, polling with a deadline where the only signal is a process
table, a log file or a socket.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from stdio_gateway import (
    FAST_SETTINGS,
    STEP,
    command_line,
    fixture,
    gateway,
    server_process,
    text_of,
    tool_names,
    write_config,
)

from switchyard.store.audit import SqliteAuditStore

pytestmark = pytest.mark.anyio


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
