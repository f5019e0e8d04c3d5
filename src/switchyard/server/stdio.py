"""The stdio front: one desktop client on stdin/stdout, either protocol era.

Owns: wiring stdin/stdout to the front `Server` while the gateway runs. When both are pipes or sockets (how
every desktop client starts a server) they are read and written on the event loop, without the worker-thread
hop per line, per write and per flush that the SDK's `stdio_server` pays for its file-based streams (about a
third of the gateway's added latency per call). Anything else (a terminal, a file) goes through the SDK's
`stdio_server` unchanged, and so does everything when `SWITCHYARD_SDK_STDIO` is set (an escape hatch, and
the baseline `bench/overhead.py --compare sdk-stdio` measures against). Either way fd 0 and fd 1 are diverted while
serving (to the null device and to stderr), so a stray `print` or a child cannot corrupt the wire, and
restored on exit.
Does not own handlers (mcp.py), upstream start-up (gateway.py) or what a stop signal does (signals.py).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import stat
import sys
from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from functools import partial
from typing import Any

import anyio
from mcp.server.stdio import stdio_server

from switchyard.gateway import Gateway
from switchyard.server.lane import FrontLane
from switchyard.server.mcp import FrontServer
from switchyard.server.signals import drain_then_cancel, stop_on_signal
from switchyard.upstream.lane import lanes_enabled

__all__ = ["serve_stdio"]

logger = logging.getLogger("switchyard.front")

_READ_CHUNK_LIMIT = 1 << 20
"""Line-reader buffer threshold; longer lines are read in chunks of this size and joined (no line limit)."""


def _is_pipe_or_socket(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class _Lines:
    """`async for line in ...` over an asyncio `StreamReader`: one decoded line per step, with its newline.
    Lines the lane serves (`lane.py`) are not passed on."""

    def __init__(self, reader: asyncio.StreamReader, lane: FrontLane | None = None) -> None:
        self._reader = reader
        self._lane = lane

    def __aiter__(self) -> _Lines:
        return self

    async def _line(self) -> bytes:
        parts: list[bytes] = []
        while True:
            try:
                parts.append(await self._reader.readuntil(b"\n"))
                break
            except asyncio.LimitOverrunError as exc:
                parts.append(await self._reader.readexactly(exc.consumed))
            except asyncio.IncompleteReadError as exc:
                parts.append(exc.partial)
                break
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def __anext__(self) -> str:
        while True:
            data = await self._line()
            if not data:
                raise StopAsyncIteration
            if self._lane is None or not self._lane.take(data):
                return data.decode("utf-8", errors="replace")


class _Writer:
    """`write` + `flush` over an asyncio pipe transport; `flush` waits only when the pipe is full."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def write(self, text: str) -> None:
        self._writer.write(text.encode("utf-8"))

    async def flush(self) -> None:
        await self._writer.drain()


def _divert(fd: int, open_diversion: Callable[[], int]) -> tuple[int, Callable[[], None]]:
    """Move the wire off `fd`: returns a private close-on-exec duplicate of it for the event loop (which
    closes it) and a function that puts the wire back on `fd`, blocking again. `fd` meanwhile points at
    what `open_diversion` opens."""
    keep = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    loop_fd = fcntl.fcntl(keep, fcntl.F_DUPFD_CLOEXEC, 3)
    diversion = open_diversion()
    try:
        os.dup2(diversion, fd)
    finally:
        os.close(diversion)

    def restore() -> None:
        with suppress(OSError):
            os.set_blocking(keep, True)  # the event loop made the shared description non-blocking
            os.dup2(keep, fd)
        with suppress(OSError):
            os.close(keep)

    return loop_fd, restore


@asynccontextmanager
async def _pipe_stdio(front: FrontServer | None = None) -> AsyncGenerator[tuple[Any, Any]]:
    """The SDK's `stdio_server` fed by event-loop pipe streams instead of thread-backed files; with `front`,
    tool calls take the lane (`lane.py`) unless lanes are off."""
    loop = asyncio.get_running_loop()
    in_fd, restore_in = _divert(0, lambda: os.open(os.devnull, os.O_RDONLY))
    out_fd, restore_out = _divert(1, lambda: os.dup(2))
    try:
        reader = asyncio.StreamReader(limit=_READ_CHUNK_LIMIT, loop=loop)
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader, loop=loop), os.fdopen(in_fd, "rb", buffering=0)
        )
        write_transport, write_protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(out_fd, "wb", buffering=0)
        )
        writer = asyncio.StreamWriter(write_transport, write_protocol, None, loop)
        try:
            async with anyio.create_task_group() as lane_tasks:
                lane = FrontLane(front.server, writer, lane_tasks) if front is not None and lanes_enabled() else None
                if front is not None and lane is not None:
                    front.on_legacy_connection = lane.adopt
                try:
                    async with stdio_server(_Lines(reader, lane), _Writer(writer)) as streams:  # type: ignore[arg-type]
                        yield streams
                finally:
                    lane_tasks.cancel_scope.cancel()  # the client is gone: calls still running end (as the SDK's do)
        finally:
            read_transport.close()
            with suppress(Exception):
                await writer.drain()
            write_transport.close()
    finally:
        sys.stdout.flush()
        restore_out()
        restore_in()


def _stdio(front: FrontServer | None = None) -> AbstractAsyncContextManager[tuple[Any, Any]]:
    if _is_pipe_or_socket(0) and _is_pipe_or_socket(1) and not os.environ.get("SWITCHYARD_SDK_STDIO"):
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # not on asyncio (trio): the SDK's transport works everywhere
            return stdio_server()
        return _pipe_stdio(front)
    return stdio_server()


async def serve_stdio(gateway: Gateway) -> None:
    """Serve one client on this process's stdin/stdout until it disconnects (closes stdin, or stops reading
    stdout) or a stop signal arrives (server/signals.py: calls in flight may finish first); upstreams stop on
    return."""
    front = FrontServer(gateway)
    try:
        async with gateway.running(), anyio.create_task_group() as tg:
            # The stop signal's scope encloses the transport too: its stdin reader only ends at EOF otherwise.
            stop = drain_then_cancel(gateway, tg.cancel_scope)
            await tg.start(
                partial(stop_on_signal, stop, tg.cancel_scope.cancel, drain=gateway.config.switchyard.timeouts.drain)
            )
            async with _stdio(front) as (read, write):
                await front.server.run(read, write, front.initialization_options())
            tg.cancel_scope.cancel()
    except* (ConnectionResetError, BrokenPipeError):
        logger.info("the client closed stdout; stopping")
