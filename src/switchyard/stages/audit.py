"""The audit stage: one row for every request and every decision, written off the call path.

Owns: classifying each outcome (allowed / denied / rate_limited / error, with a reason) and building the
pending row. Does not own storage (store/audit.py) or redaction rules (redact.py). An observer: it fails open,
so an audit problem is logged and never changes or delays a call. It is the outermost stage, so refusals by
policy and rate limits are audited too.

On the call path the stage only timestamps and enqueues a small object; redaction, JSON serialization and the
result's size are computed by the writer thread when the batch is written.

Inner stages that change a result without refusing the call (the output guard annotating or redacting, the
flow policy recording an approval) call `note_decision`; the row then carries their decision and reason.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import anyio

from switchyard.errors import Hidden, NotFound, PolicyDenied, Quarantined, RateLimited, UpstreamError
from switchyard.identity import Principal
from switchyard.pipeline.chain import Handler
from switchyard.pipeline.context import CallContext
from switchyard.stages.redact import COMPACT_JSON, Redactor
from switchyard.store.audit import AuditRow, PendingRow
from switchyard.upstream.base import JsonObject

__all__ = ["AuditEvent", "AuditSink", "AuditStage", "audit_list", "classify", "decision_noter", "note_decision"]

logger = logging.getLogger("switchyard.audit")

_NOTES: contextvars.ContextVar[list[tuple[str, str]] | None] = contextvars.ContextVar(
    "switchyard_audit_notes", default=None
)
# When several inner stages note a decision, the row shows the strongest; the reason lists them all.
_PRECEDENCE = ("blocked", "held", "annotated", "redacted", "approved")


def note_decision(decision: str, reason: str) -> None:
    """Record, on the current request's audit row, a decision that did not refuse the call (e.g. "redacted")."""
    notes = _NOTES.get()
    if notes is not None:
        notes.append((decision, reason))


def decision_noter() -> Callable[[str, str], None]:
    """`note_decision` bound to the current request's audit row, for code that runs later in another task (a
    request an upstream pushes mid-call is answered in its session's task, outside the call's context)."""
    notes = _NOTES.get()
    if notes is None:
        return lambda decision, reason: None
    return lambda decision, reason: notes.append((decision, reason))


def _with_notes(decision: str, reason: str, notes: list[tuple[str, str]], failed: bool) -> tuple[str, str]:
    if not notes:
        return decision, reason
    noted = "; ".join(f"{d}: {r}" for d, r in notes)
    if failed:
        return decision, f"{reason}; {noted}" if reason else noted
    ranked = sorted((d for d, _ in notes), key=lambda d: _PRECEDENCE.index(d) if d in _PRECEDENCE else 99)
    return ranked[0], noted


class AuditSink(Protocol):
    """Where pending rows go (`SqliteAuditStore`, or a list in tests). `submit` must never block."""

    def submit(self, row: PendingRow) -> bool:
        """Queue one row; False if it was dropped."""
        ...


def classify(exc: BaseException | None) -> tuple[str, str]:
    """(decision, reason) for an outcome: None is success."""
    if exc is None:
        return "allowed", ""
    if isinstance(exc, Hidden):
        return "denied", exc.reason
    if isinstance(exc, PolicyDenied | Quarantined):
        return "denied", f"{type(exc).__name__}: {exc.message}"
    if isinstance(exc, RateLimited):
        return "rate_limited", exc.message
    if isinstance(exc, NotFound):
        return "error", f"not found: {exc.message}"
    if isinstance(exc, UpstreamError):
        return "error", f"upstream error {exc.code}: {exc.message}"
    if isinstance(exc, Exception):
        return "error", type(exc).__name__
    return "error", "cancelled"


_CLIENT = json.JSONEncoder(ensure_ascii=False)
_NAMED_METHODS = frozenset({"tools/call", "prompts/get"})
"""Methods whose item is named by a catalog name, never by a URI that could hold a credential."""


class AuditEvent:
    """A request's outcome, captured cheaply on the call path; `to_row` does the rest on the writer thread."""

    __slots__ = ("committed", "ctx", "decision", "latency", "reason", "redactor", "result", "when")

    def __init__(
        self,
        ctx: CallContext,
        result: JsonObject | None,
        *,
        decision: str,
        reason: str,
        latency: float,
        when: float,
        redactor: Redactor,
    ) -> None:
        self.ctx = ctx
        self.result = result
        self.decision = decision
        self.reason = reason
        self.latency = latency
        self.when = when
        self.redactor = redactor
        self.committed: Callable[[], object] | None = None
        """Called by the writer thread once the row is committed (set in durable mode)."""

    def to_row(self) -> AuditRow:
        """The redacted, size-capped row."""
        ctx = self.ctx
        arguments: Any = ctx.params.get("arguments") if ctx.method in ("tools/call", "prompts/get") else None
        if arguments is None and ctx.method not in ("tools/call", "prompts/get"):
            arguments = {k: v for k, v in ctx.params.items() if k != "_meta"} or None
        size: int | None = None
        is_error: bool | None = None
        if self.result is not None:
            size = len(COMPACT_JSON.encode(self.result).encode("utf-8", "surrogatepass"))  # a lone surrogate: 3
            is_error = bool(self.result.get("isError", False))
        client = None
        if ctx.client_info:
            info: Mapping[str, Any] = ctx.client_info
            client = _CLIENT.encode({k: info[k] for k in ("name", "version") if k in info})
        return AuditRow(
            event=uuid.uuid4().hex,  # made here, on the writer thread: os.urandom is a system call
            time=self.when,
            principal=ctx.principal.id,
            principal_kind=ctx.principal.kind,
            client=client,
            era=ctx.era,
            method=ctx.method,
            server=ctx.server,
            # A resource's URI may carry credentials (user:password@); tool and prompt names are the catalog's.
            tool=ctx.name if ctx.method in _NAMED_METHODS else self.redactor.redact(ctx.name),
            arguments=None if arguments is None else self.redactor.serialize(arguments),
            result_bytes=size,
            is_error=is_error,
            latency_ms=round(self.latency * 1000.0, 3),
            decision=self.decision,
            reason=self.redactor.redact(self.reason) if self.reason else "",  # may quote the URI or an argument
        )


class AuditStage:
    """Records every request that passes through it, whatever the outcome, then lets the outcome stand."""

    def __init__(
        self,
        sink: AuditSink,
        redactor: Redactor,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        durable: bool = False,
        durable_wait: float = 5.0,
    ) -> None:
        """Record every request into `sink`.

        Args:
            sink: where rows go.
            redactor: applied to arguments on the writer thread.
            clock: monotonic time, for latency.
            wall: wall-clock time, for the row's timestamp.
            durable: answer a call only after its row is committed (group commit), so every call a client
                saw answered is in the log even after `kill -9`; costs up to the writer's linger per call.
            durable_wait: the longest a call waits for its row (then it is answered anyway, and logged).
        """
        self.sink = sink
        self.redactor = redactor
        self.clock = clock
        self.wall = wall
        self.durable = durable
        self.durable_wait = durable_wait

    def _record(
        self,
        ctx: CallContext,
        result: JsonObject | None,
        exc: BaseException | None,
        start: float,
        notes: list[tuple[str, str]] | None = None,
    ) -> asyncio.Future[None] | None:
        """Queue the row; in durable mode, return a future resolved when the writer has committed it."""
        try:
            decision, reason = _with_notes(*classify(exc), notes or [], exc is not None)
            latency = self.clock() - start
            event = AuditEvent(
                ctx,
                result,
                decision=decision,
                reason=reason,
                latency=latency,
                when=self.wall(),
                redactor=self.redactor,
            )
            future: asyncio.Future[None] | None = None
            if self.durable:
                loop = asyncio.get_running_loop()
                future = loop.create_future()
                event.committed = _resolver(loop, future)
            return future if self.sink.submit(event) else None
        except Exception:  # an observer never breaks a call
            logger.exception("audit record failed")
            return None

    async def _acknowledged(self, future: asyncio.Future[None] | None) -> None:
        if future is None:
            return
        with anyio.move_on_after(self.durable_wait) as scope:
            await future
        if scope.cancelled_caught:
            logger.error("audit row not committed within %.1f s; answering the call anyway", self.durable_wait)

    async def __call__(self, ctx: CallContext, call_next: Handler) -> JsonObject:
        """Run the rest of the chain and record its outcome."""
        start = self.clock()
        notes: list[tuple[str, str]] = []
        token = _NOTES.set(notes)
        try:
            result = await call_next(ctx)
        except Exception as exc:
            _NOTES.reset(token)
            await self._acknowledged(self._record(ctx, None, exc, start, notes))
            raise
        except BaseException as exc:  # cancelled: record without waiting
            _NOTES.reset(token)
            self._record(ctx, None, exc, start, notes)
            raise
        _NOTES.reset(token)
        await self._acknowledged(self._record(ctx, result, None, start, notes))
        return result


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _resolver(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> Callable[[], None]:
    """What the writer thread calls after the commit: resolve `future` on its own loop."""

    def resolve() -> None:
        loop.call_soon_threadsafe(_resolve, future)

    return resolve


def audit_list(
    sink: AuditSink | None,
    method: str,
    principal: Principal,
    *,
    era: str,
    client_info: Mapping[str, Any] | None,
    count: int,
) -> None:
    """Record a list request (answered by the front from the catalog, outside the stage chain). Fails open."""
    if sink is None:
        return
    try:
        client = None
        if client_info:
            client = json.dumps({k: client_info[k] for k in ("name", "version") if k in client_info})
        sink.submit(
            AuditRow.event_row(
                principal=principal.id,
                principal_kind=principal.kind,
                client=client,
                era=era,
                method=method,
                decision="allowed",
                reason=f"{count} item(s) listed",
            )
        )
    except Exception:
        logger.exception("audit of a list request failed")
