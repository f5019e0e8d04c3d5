"""`CrashableUpstream`: an in-process upstream that a test can crash, keep down and bring back.

Owns nothing the product runs. It is a `MemoryUpstream` whose connection a test can cut the way a crashed
process cuts its pipes (calls in flight see the connection close; the real `ClientUpstream.run` notices and
restarts it with backoff), optionally refusing reconnection until told otherwise, so restart behaviour can be
tested without processes. Use it through `memory_gateway(..., upstream_type=CrashableUpstream)`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

import anyio

from switchyard.upstream.base import UpstreamState
from switchyard.upstream.memory import MemoryUpstream

__all__ = ["CrashableUpstream"]


class CrashableUpstream(MemoryUpstream):
    """A `MemoryUpstream` with `crash()`, `recover()` and `wait_for(state)`."""

    def __init__(self, name: str, server: Any, **kwargs: Any) -> None:
        super().__init__(name, server, **kwargs)
        self.refusing: str | None = None
        """While set, connection attempts fail with this message (a server that cannot start)."""
        self.connections = 0
        """How many connections were made (1 after start-up, 2 after one restart...)."""
        self._cut: anyio.CancelScope | None = None
        self._changed = anyio.Event()

    def crash(self, *, stay_down: str | None = None) -> None:
        """End the current connection as a crashed server would; with `stay_down`, refuse to reconnect (with
        that message) until `recover()`."""
        self.refusing = stay_down
        if self._cut is not None:
            self._cut.cancel()

    def recover(self) -> None:
        """Let the next restart attempt succeed."""
        self.refusing = None

    async def wait_for(self, state: UpstreamState, timeout: float = 10.0) -> None:
        """Wait until the upstream reports `state` (its listener was told); bounded by `timeout`."""
        with anyio.fail_after(timeout):
            while True:
                changed = self._changed  # taken before the check: a change right after it sets this one
                if self.state is state:
                    return
                await changed.wait()

    async def _notify(self, what: frozenset[str]) -> None:
        await super()._notify(what)
        self._changed.set()
        self._changed = anyio.Event()

    def _target(self, stack: AsyncExitStack) -> Any:
        if self.refusing is not None:
            raise ConnectionRefusedError(self.refusing)
        self.connections += 1
        return self._cuttable(super()._target(stack))

    @asynccontextmanager
    async def _cuttable(
        self, transport: AbstractAsyncContextManager[tuple[Any, Any]]
    ) -> AsyncGenerator[tuple[Any, Any]]:
        """The transport's streams, with the read side relayed through a pump that `crash()` stops."""
        async with transport as (read, write):
            relay_send, relay_receive = anyio.create_memory_object_stream[Any](0)
            cut = anyio.CancelScope()
            self._cut = cut

            async def pump() -> None:
                async with relay_send:
                    with cut:
                        async for message in read:
                            await relay_send.send(message)

            async with anyio.create_task_group() as tg:
                tg.start_soon(pump)
                try:
                    yield relay_receive, write
                finally:
                    self._cut = None
                    tg.cancel_scope.cancel()
