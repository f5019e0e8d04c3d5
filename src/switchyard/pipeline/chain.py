"""The stage chain: an onion of `Stage`s around the final dispatch, assembled once at start-up.

Owns: the `Stage` Protocol and composing stages in a fixed order. Does not own any stage (see stages/) or the
dispatch itself (the gateway supplies it). A chain cannot change after it is built.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Protocol

from switchyard.pipeline.context import CallContext
from switchyard.upstream.base import JsonObject

__all__ = ["Handler", "Stage", "compose"]

Handler = Callable[[CallContext], Awaitable[JsonObject]]


class Stage(Protocol):
    """One layer of the onion: may inspect or change the context, refuse, or post-process the result."""

    async def __call__(self, ctx: CallContext, call_next: Handler) -> JsonObject:
        """Handle `ctx`, usually by awaiting `call_next(ctx)` (or a changed copy of it)."""
        ...


async def _apply(stage: Stage, call_next: Handler, ctx: CallContext) -> JsonObject:
    return await stage(ctx, call_next)


def compose(stages: Sequence[Stage], dispatch: Handler) -> Handler:
    """Wrap `dispatch` in `stages`, the first stage outermost."""
    handler = dispatch
    for stage in reversed(tuple(stages)):
        handler = partial(_apply, stage, handler)
    return handler
