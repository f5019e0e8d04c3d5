"""Rate limits and concurrency caps: token buckets per principal, per principal and tool, and per upstream,
and a cap on calls in flight per upstream (to protect fragile servers).

Owns: `TokenBucket` (time from an injected monotonic clock, so tests never sleep) and `RateLimitStage`.
Does not own who the principal is (server/auth.py) or what it may see (policy.py).

A call takes one token from every bucket that applies to it, or from none: the buckets are checked first and
drawn only when all have a token and the call holds its concurrency slot, so a refusal by one bucket or by the
cap never spends another's. Refusals raise `errors.RateLimited`, a JSON-RPC error whose data carries
`retryAfterSeconds`. A name that did not resolve still spends a per-principal token, so guessing names is
rate limited too, and so does a name policy hides (`spend_as_unknown`, called by the policy stage), so the two
cannot be told apart by which runs out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio

from switchyard.config import BucketSettings, LimitSettings
from switchyard.errors import RateLimited
from switchyard.pipeline.chain import Handler
from switchyard.pipeline.context import CallContext
from switchyard.upstream.base import JsonObject

__all__ = ["Clock", "RateLimitStage", "TokenBucket"]

Clock = Callable[[], float]
"""Monotonic seconds; `time.monotonic` in production, a fake in tests."""

_CAP_RETRY_AFTER = 1.0
K = TypeVar("K")


class TokenBucket:
    """`rate` tokens per second, holding at most `burst`; starts full."""

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.updated = now

    def wait(self, now: float) -> float:
        """Seconds until one token is available (0.0 when one is available now). Refills as a side effect."""
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def take(self) -> None:
        """Spend one token (call `wait` first)."""
        self.tokens -= 1.0


class _Buckets(Generic[K]):
    """Buckets by key, created full on first use; the oldest is forgotten beyond `limit` keys."""

    def __init__(self, spec: BucketSettings, limit: int) -> None:
        self.spec = spec
        self.limit = limit
        self._buckets: dict[K, TokenBucket] = {}

    def get(self, key: K, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.limit:
                del self._buckets[next(iter(self._buckets))]
            bucket = self._buckets[key] = TokenBucket(self.spec.rate, self.spec.burst, now)
        return bucket


class RateLimitStage:
    """Token buckets, then the per-upstream concurrency cap, around the rest of the chain."""

    def __init__(self, settings: LimitSettings, clock: Clock = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        limit = settings.max_buckets
        self._principal = _Buckets[str](settings.per_principal, limit) if settings.per_principal else None
        tool = settings.per_principal_tool
        self._tool = _Buckets[tuple[str, str]](tool, limit) if tool else None
        self._upstream: dict[str, TokenBucket] = {}
        self._caps: dict[str, tuple[anyio.Semaphore, int]] = {}

    def _upstream_bucket(self, server: str, now: float) -> TokenBucket | None:
        bucket = self._upstream.get(server)
        if bucket is None:
            spec = self.settings.per_upstream.get(server) or self.settings.per_upstream.get("*")
            if spec is None:
                return None
            bucket = self._upstream[server] = TokenBucket(spec.rate, spec.burst, now)
        return bucket

    def _cap(self, server: str) -> tuple[anyio.Semaphore, int] | None:
        cap = self._caps.get(server)
        if cap is None:
            n = self.settings.concurrency.get(server) or self.settings.concurrency.get("*")
            if n is None:
                return None
            cap = self._caps[server] = (anyio.Semaphore(n), n)
        return cap

    def spend_as_unknown(self, ctx: CallContext) -> None:
        """Charge a call to an item policy hides as a call to a name that does not exist is charged: the
        per-principal token only (raises `RateLimited` when there is none). Called by the policy stage, so a
        caller cannot tell a hidden name from an unknown one by which of them runs out."""
        self._spend(ctx, resolved=False)

    def _spend(self, ctx: CallContext, *, resolved: bool = True, take: bool = True) -> None:
        """Take one token from every applicable bucket, or raise `RateLimited` having taken none (with
        `take=False`, only check that every bucket has one)."""
        now = self.clock()
        who = ctx.principal.id
        key = str(ctx.principal)  # `kind:id`: an API key and a JWT `sub` of the same name have their own buckets
        found: list[tuple[str, TokenBucket]] = []
        if self._principal is not None:
            found.append((f"principal '{who}'", self._principal.get(key, now)))
        if ctx.server and resolved:
            if self._tool is not None and ctx.method == "tools/call":
                found.append((f"principal '{who}' on tool '{ctx.name}'", self._tool.get((key, ctx.name), now)))
            upstream = self._upstream_bucket(ctx.server, now)
            if upstream is not None:
                found.append((f"server '{ctx.server}'", upstream))
        waits = [(bucket.wait(now), label) for label, bucket in found]
        worst = max(waits, default=(0.0, ""))
        if worst[0] > 0.0:
            raise RateLimited(f"Rate limit exceeded for {worst[1]}; retry after {worst[0]:.3g} s", worst[0])
        if take:
            for _, bucket in found:
                bucket.take()

    async def __call__(self, ctx: CallContext, call_next: Handler) -> JsonObject:
        """Hold a concurrency slot on the upstream and spend tokens, then pass `ctx` on. A call the cap refuses
        spends no token: the buckets are checked first, drawn only once the slot is held."""
        found = self._cap(ctx.server) if ctx.server else None
        if found is None:
            self._spend(ctx)
            return await call_next(ctx)
        cap, size = found
        self._spend(ctx, take=False)
        try:
            cap.acquire_nowait()
        except anyio.WouldBlock:
            acquired = False
            if self.settings.queue_wait > 0:
                with anyio.move_on_after(self.settings.queue_wait):
                    await cap.acquire()
                    acquired = True
            if not acquired:
                raise RateLimited(
                    f"Server '{ctx.server}' is at its concurrency cap ({size} calls in flight); "
                    f"retry after {_CAP_RETRY_AFTER:g} s",
                    _CAP_RETRY_AFTER,
                ) from None
        try:
            self._spend(ctx)  # checked again: the buckets may have emptied while the call waited for its slot
            return await call_next(ctx)
        finally:
            cap.release()
