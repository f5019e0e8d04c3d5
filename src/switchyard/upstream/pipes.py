"""`open_stdio`: the stdio transport for upstream servers, linear in the size of a message.

Owns: starting one server process (its own session and process group), framing newline-delimited JSON-RPC on
its stdout and stdin, and the shutdown sequence (close stdin, a grace period, then SIGTERM and SIGKILL to the
process group), every wait bounded and shielded from cancellation so no process is left behind.

Why not the SDK's `stdio_client`: it re-joins and re-splits everything buffered since the last newline on
every 64 KiB read, so one 20 MB result costs some 13 s of event-loop time in the gateway (quadratic), stalling
every other call meanwhile. Here a line's pieces are kept in a list and joined once. Lines that are not JSON-RPC
(servers print banners and progress bars on stdout) reach the session as exceptions, as with the SDK, and are
logged in one line instead of with a traceback. Does not own: the guard process (`reaper.py`), the session, or
stderr (the caller passes a file for it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import TextIO

import anyio
import anyio.abc
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.client.stdio import get_default_environment
from mcp.os.posix.utilities import terminate_posix_process_tree
from mcp.shared.message import SessionMessage

from switchyard.upstream.lane import UpstreamLane

__all__ = ["open_stdio"]

logger = logging.getLogger("switchyard.upstream")

_READ_BYTES = 1 << 20
_WRITER_FLUSH = 0.5
"""How long already accepted messages may take to reach the server's stdin at shutdown."""
_EXIT_GRACE = 2.0
"""How long a server has to exit by itself once its stdin is closed, unless the caller says
(`timeouts.shutdown_grace`)."""
_KILL_GRACE = 2.0
"""Between SIGTERM and SIGKILL to the process group, and again for the kernel to reap it."""
_LONGEST_STOP_BEYOND_GRACE = _WRITER_FLUSH + 2 * _KILL_GRACE + 1.0

ReadStream = MemoryObjectReceiveStream[SessionMessage | Exception]
WriteStream = MemoryObjectSendStream[SessionMessage]


def _parse(line: bytes, server: str) -> SessionMessage | Exception:
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValueError as exc:
        try:  # invalid UTF-8 inside an otherwise good message: replace, as the SDK's "replace" handler does
            text = line.decode("utf-8", errors="replace")
            return SessionMessage(types.jsonrpc_message_adapter.validate_json(text, by_name=False))
        except ValueError:
            preview = line[:120].decode("utf-8", errors="replace")
            logger.warning("server %s: skipped a line on stdout that is not JSON-RPC: %r", server, preview)
            return exc


def _lane_send(stdin: anyio.abc.ByteSendStream) -> Callable[[bytes, float], Awaitable[None]]:
    """What the lane writes its request lines with (`send(data, deadline)`): the pipe's asyncio writer itself
    when anyio's wrapper holds one. anyio's `send` follows every write with a cancel-shielded `sleep(0)`, a
    whole event-loop turn per call; the lane waits for the answer right after, which is a checkpoint anyway.
    A closed pipe raises as anyio's would (`BrokenResourceError`, or the `OSError` itself). Only a write the
    pipe could not take at once can wait (in `drain`, for the server to read), and that wait ends at
    `deadline` with `TimeoutError`."""
    writer: object = getattr(stdin, "_stream", None)
    if not isinstance(writer, asyncio.StreamWriter):

        async def wrapped(data: bytes, deadline: float) -> None:
            with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                await stdin.send(data)

        return wrapped
    stream = writer

    async def send(data: bytes, deadline: float) -> None:
        try:
            stream.write(data)
            if stream.transport.get_write_buffer_size():  # the pipe is full: drain may wait for the reader
                with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                    await stream.drain()
            else:
                await stream.drain()  # returns at once; raises on a lost connection
        except (ConnectionResetError, BrokenPipeError, RuntimeError) as exc:
            if stream.is_closing():
                raise anyio.BrokenResourceError from exc
            raise

    return send


async def _exited(process: anyio.abc.Process, timeout: float) -> bool:
    """Whether the process exited within `timeout` (polls `returncode`: `wait()` also waits for pipe EOF)."""
    with anyio.move_on_after(timeout):
        while process.returncode is None:  # noqa: ASYNC110 - the exit has no event to wait on
            await anyio.sleep(0.01)
        return True
    return False


@asynccontextmanager
async def open_stdio(
    command: str,
    args: list[str],
    *,
    env: dict[str, str] | None,
    cwd: str | Path | None,
    errlog: TextIO,
    server: str,
    lane: UpstreamLane | None = None,
    exit_grace: float = _EXIT_GRACE,
) -> AsyncGenerator[tuple[ReadStream, WriteStream]]:
    """Start `command args` and yield the (read, write) message streams an MCP client session runs on.

    The environment is the SDK's safe default set plus `env`. On exit the server is stopped (see the module
    docstring) even if the caller is cancelled. With a `lane`, answers to the lane's requests are handed to it
    before any parsing, and its requests are written straight to stdin (`lane.py`).

    Raises:
        OSError: the process could not be started.
    """
    process = await anyio.open_process(
        [command, *args],
        env=get_default_environment() | (env or {}),
        stderr=errlog,
        cwd=cwd,
        start_new_session=True,
    )
    stdout, stdin = process.stdout, process.stdin
    assert stdout is not None  # spawned with pipes
    assert stdin is not None
    # No await between the spawn and the task group below: a cancellation there would leak the process.
    to_session, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, from_session = anyio.create_memory_object_stream[SessionMessage](0)
    writer_done = anyio.Event()

    async def read_stdout() -> None:
        pieces: list[bytes] = []
        try:
            async with to_session:
                while True:
                    chunk = await stdout.receive(_READ_BYTES)
                    start = 0
                    while (end := chunk.find(b"\n", start)) >= 0:
                        pieces.append(chunk[start:end])
                        line = pieces[0] if len(pieces) == 1 else b"".join(pieces)
                        pieces.clear()
                        start = end + 1
                        if line.strip() and (lane is None or not lane.offer(line)):
                            await to_session.send(_parse(line, server))
                    if start < len(chunk):
                        pieces.append(chunk[start:])
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            pass  # the server closed stdout, or the session is gone
        if lane is not None:
            lane.close()  # nothing more will answer the lane's calls
        # Keep the pipe empty so a server blocked writing to it can still see its stdin close and exit; shielded
        # so shutdown under cancellation drains too, bounded by the longest shutdown (stop() closes the pipe).
        longest_stop = exit_grace + _LONGEST_STOP_BEYOND_GRACE
        with anyio.CancelScope(shield=True, deadline=anyio.current_time() + longest_stop), suppress(Exception):
            while True:
                await stdout.receive(_READ_BYTES)

    async def write_stdin() -> None:
        try:
            async with from_session:
                async for message in from_session:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    await stdin.send(data.encode("utf-8", errors="replace") + b"\n")
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            # The server stopped reading: end the connection rather than leave requests waiting forever.
            await to_session.aclose()
        finally:
            writer_done.set()

    async def stop() -> None:
        # 1. No more traffic: the session's ends close, the reader drains, accepted messages get flushed.
        if lane is not None:
            lane.close()
        read_stream.close()
        write_stream.close()
        with anyio.move_on_after(_WRITER_FLUSH):
            await writer_done.wait()
        # 2. Close stdin and give the server a grace period to exit by itself.
        with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            await stdin.aclose()
        if not await _exited(process, exit_grace):
            # 3. SIGTERM to the whole process group, then SIGKILL.
            await terminate_posix_process_tree(process, _KILL_GRACE)
            if not await _exited(process, _KILL_GRACE):
                logger.warning("server %s: process %d survived SIGKILL; abandoning it", server, process.pid)
        with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            await stdout.aclose()
        for stream in (to_session, from_session):
            await stream.aclose()

    async with anyio.create_task_group() as tg:
        tg.start_soon(read_stdout)
        tg.start_soon(write_stdin)
        if lane is not None:
            lane.attach(_lane_send(stdin), tg)
        try:
            yield read_stream, write_stream
        finally:
            with anyio.CancelScope(shield=True):
                await stop()
            tg.cancel_scope.cancel()  # a killed server's surviving descendant may still hold the pipes open
