"""`ClosedWatch`: notice when an upstream connection's read side ends, without adding a hop per message.

Owns: a transparent proxy over a transport's read stream that sets an event at end of stream. Does not own
reconnecting (see `client.py`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any

import anyio

__all__ = ["ClosedWatch"]


class _WatchedReadStream:
    """Delegates every call to the wrapped read stream; sets `closed` when the stream ends."""

    def __init__(self, inner: Any, watch: ClosedWatch) -> None:
        self._inner = inner
        self._watch = watch

    async def receive(self) -> Any:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._watch.close("the server closed the connection")
            raise

    def __aiter__(self) -> _WatchedReadStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self._watch.close("the connection was closed")
        await self._inner.aclose()

    async def __aenter__(self) -> _WatchedReadStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __getattr__(self, name: str) -> Any:
        # `last_context` and anything else a dispatcher may look for.
        return getattr(self._inner, name)


class ClosedWatch:
    """Wraps a transport so `closed` is set once its read stream ends."""

    def __init__(self) -> None:
        self.closed = anyio.Event()
        self.reason: str | None = None

    def close(self, reason: str) -> None:
        """Record why the connection ended (first reason wins) and set the event."""
        if self.reason is None:
            self.reason = reason
        self.closed.set()

    def wrap(self, transport: AbstractAsyncContextManager[tuple[Any, Any]]) -> AbstractAsyncContextManager[Any]:
        """Return a transport that yields the same streams, the read side watched."""

        @asynccontextmanager
        async def watched() -> AsyncGenerator[tuple[Any, Any]]:
            async with transport as (read, write):
                try:
                    yield _WatchedReadStream(read, self), write
                finally:
                    self.close("the connection was closed")

        return watched()
