"""`run`: the event loop the gateway's long-running commands run on.

Owns one choice: uvloop (libuv's event loop for asyncio) when it is installed, which it is by default, because
a gateway's work per call is mostly event-loop plumbing (pipe and socket reads and writes, wake-ups, task
switches), and uvloop does that plumbing in C. `SWITCHYARD_UVLOOP=off` runs on the standard asyncio loop (an
escape hatch, and the baseline a benchmark can compare against). Everything runs under anyio either way.
Does not own what runs on the loop.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

__all__ = ["run", "uses_uvloop"]

T = TypeVar("T")


def uses_uvloop() -> bool:
    """Whether `run` will use uvloop: installed, and not turned off with `SWITCHYARD_UVLOOP=off`."""
    if os.environ.get("SWITCHYARD_UVLOOP", "").lower() in ("off", "0", "false", "no"):
        return False
    return importlib.util.find_spec("uvloop") is not None


def run(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """`anyio.run(fn, *args)` on asyncio, with uvloop when `uses_uvloop()`."""
    return anyio.run(fn, *args, backend="asyncio", backend_options={"use_uvloop": uses_uvloop()})
