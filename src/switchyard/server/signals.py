"""Stopping `switchyard serve` on SIGTERM, SIGINT or SIGHUP: gracefully on the first, at once on another.

Owns: which signals stop the gateway, the one log line that says so, and the order of a graceful stop on the
stdio front (refuse new requests, wait up to `timeouts.drain` for those in flight, then end the session). The
fronts decide what stopping means for them: stdio.py ends its session with `drain_then_cancel`, http.py tells
uvicorn to stop (uvicorn stops accepting, waits for open requests, then ends the app's lifespan). Either way the
gateway's exit then stops every upstream (close stdin, grace, kill: upstream/pipes.py) and flushes the audit
log. Does not own the process guard (upstream/reaper.py), which still ends servers when the gateway is killed.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Final

import anyio
import anyio.abc

from switchyard.gateway import Gateway

__all__ = ["STOP_SIGNALS", "drain_then_cancel", "stop_on_signal"]

logger = logging.getLogger("switchyard.serve")

STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_SETTLE: Final = 0.5
"""At most this long for answers already made to reach the transport before the session ends."""


async def stop_on_signal(
    stop: Callable[[], Awaitable[None]],
    hurry: Callable[[], None],
    *,
    drain: float,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Wait for a stop signal, then run `stop`; any further signal calls `hurry`. Runs until cancelled.

    `task_status.started()` is called once the signals are caught, so a caller can start this with
    `TaskGroup.start` and know that a signal from then on stops gracefully rather than ends the process.
    """
    with anyio.open_signal_receiver(*STOP_SIGNALS) as received:
        task_status.started()
        async for signum in received:
            logger.info(
                "received %s: stopping (calls in flight get up to %g s, then the servers are shut down)",
                signal.Signals(signum).name,
                drain,
            )
            break
        async with anyio.create_task_group() as tg:

            async def hurry_on_another() -> None:
                async for signum in received:
                    logger.info("received %s again: stopping now", signal.Signals(signum).name)
                    hurry()

            tg.start_soon(hurry_on_another)
            await stop()
            await anyio.sleep_forever()  # the caller cancels this once it has stopped


def drain_then_cancel(gateway: Gateway, scope: anyio.CancelScope) -> Callable[[], Awaitable[None]]:
    """A `stop` for `stop_on_signal`: refuse new requests, wait (bounded) for those in flight, cancel `scope`."""

    async def stop() -> None:
        grace = gateway.config.switchyard.timeouts.drain
        left = await gateway.drain(grace)
        if left:
            logger.warning("%d request(s) still in flight after %g s: cancelling them", left, grace)
        else:
            # The last answers left the gateway but may still be on their way to the transport (a few task
            # switches): let every task run until it waits on something, bounded, before ending the session.
            with anyio.move_on_after(_SETTLE):
                await anyio.wait_all_tasks_blocked()
        scope.cancel()

    return stop
