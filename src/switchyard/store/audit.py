"""`SqliteAuditStore`: the audit log in SQLite (WAL), written off the call path by one writer thread.

Owns the `audit` table, the writer thread, retention, and the queries behind `switchyard audit`. Does not own
what a row says (stages/audit.py makes rows; redaction happens there, on this thread).

Durability contract:
- `submit` never blocks and never touches the disk: it puts a pending row on a bounded queue. When the queue
  is full the row is dropped and counted in `dropped` (the audit log fails open; calls are never stalled).
- The writer drains the queue in batches (group commit: one transaction per batch, up to `batch_size` rows).
  After the first row of a batch it lets rows gather for `linger` seconds (100 ms by default) before it
  commits, so a gateway pays one short burst of writer work per interval rather than one per call: a thread
  wake-up and a transaction per call cost a one-client gateway under load about a tenth of its CPU. `flush`,
  `close` and a full batch cut the wait short.
  A row is **acknowledged** when the transaction holding it has committed: `committed` counts such rows,
  `on_commit` is told their event ids, and a pending row with a `committed()` method has it called (the audit
  stage's durable mode answers a call only then). `flush` waits until every row submitted before it is
  acknowledged.
- An acknowledged row survives `kill -9` of the process: in WAL mode a commit has reached the WAL file before
  `COMMIT` returns, and SQLite recovers the WAL on the next open. With `synchronous="normal"` (the default) a
  power loss may lose the last commits; `synchronous="full"` also survives that, at the cost of an fsync per
  batch. A killed process loses only rows still queued (at most one batch interval: `linger`, or the time
  one batch takes to write).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from switchyard.errors import StoreError

__all__ = ["AuditRow", "PendingRow", "SqliteAuditStore", "storable"]

logger = logging.getLogger("switchyard.audit")

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS audit (
        seq INTEGER PRIMARY KEY,
        event TEXT NOT NULL,
        time REAL NOT NULL,
        principal TEXT NOT NULL,
        principal_kind TEXT NOT NULL,
        client TEXT,
        era TEXT,
        method TEXT NOT NULL,
        server TEXT,
        tool TEXT,
        arguments TEXT,
        result_bytes INTEGER,
        is_error INTEGER,
        latency_ms REAL,
        decision TEXT NOT NULL,
        reason TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS audit_time ON audit (time)",
)
_COLUMNS = (
    "event, time, principal, principal_kind, client, era, method, server, tool, arguments, result_bytes,"
    " is_error, latency_ms, decision, reason"
)
_INSERT = f"INSERT INTO audit ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
_PRUNE_EVERY = 3600.0

Decision = Literal["allowed", "denied", "rate_limited", "error"]


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One stored audit row. `arguments` is redacted, size-capped JSON text; `time` is Unix seconds."""

    event: str
    time: float
    principal: str
    principal_kind: str
    client: str | None
    era: str
    method: str
    server: str
    tool: str
    arguments: str | None
    result_bytes: int | None
    is_error: bool | None
    latency_ms: float
    decision: str
    reason: str

    @classmethod
    def event_row(
        cls,
        *,
        principal: str,
        principal_kind: str,
        method: str,
        decision: str,
        reason: str,
        client: str | None = None,
        era: str = "",
    ) -> AuditRow:
        """A row for a request that reached no tool (a list, an authentication refusal): now, no item."""
        return cls(
            event=uuid.uuid4().hex,
            time=time.time(),
            principal=principal,
            principal_kind=principal_kind,
            client=client,
            era=era,
            method=method,
            server="",
            tool="",
            arguments=None,
            result_bytes=None,
            is_error=None,
            latency_ms=0.0,
            decision=decision,
            reason=reason,
        )

    def to_row(self) -> AuditRow:
        """Itself (an `AuditRow` is already a finished row)."""
        return self

    def as_dict(self) -> dict[str, object]:
        """The row as a JSON-ready dict (for `--json` and JSONL export)."""
        return {name: getattr(self, name) for name in self.__slots__}


class PendingRow(Protocol):
    """Anything the writer thread can turn into a row (the audit stage defers redaction to the writer)."""

    def to_row(self) -> AuditRow:
        """The finished row."""
        ...


class _Flush:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


def storable(text: str) -> str:
    """`text` with each lone surrogate (which UTF-8 cannot encode) replaced by U+FFFD; pairs are joined."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
    db.execute("PRAGMA busy_timeout=5000")
    return db


class SqliteAuditStore:
    """The audit log. `start` opens the file and the writer; `close` drains and stops it."""

    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: Literal["normal", "full"] = "normal",
        queue_size: int = 100_000,
        batch_size: int = 2_000,
        linger: float = 0.1,
        retention_days: float | None = None,
        on_commit: Callable[[Sequence[str]], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.synchronous = synchronous
        self.batch_size = batch_size
        self.linger = linger
        self.retention_days = retention_days
        self.on_commit = on_commit
        self.clock = clock
        self.committed = 0
        """Rows acknowledged (committed) by this process."""
        self.dropped = 0
        """Rows lost: queue full, or a failed batch (logged)."""
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._hurry = threading.Event()
        """Set by `flush`, `close` and a full batch: the writer stops letting the batch gather and commits now."""
        self._db: sqlite3.Connection | None = None
        self._last_prune = 0.0

    # --- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Open (creating if needed) the table and start the writer thread. Idempotent.

        Raises:
            StoreError: the file cannot be opened or created.
        """
        if self._thread is not None:
            return
        try:
            self._db = _connect(self.path, self.synchronous)
            for statement in _SCHEMA:
                self._db.execute(statement)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open audit log {self.path}: {exc}") from None
        self._prune_if_due()
        self._thread = threading.Thread(target=self._run, name="switchyard-audit-writer", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Write every queued row, stop the writer and close the file (bounded by `timeout`)."""
        thread = self._thread
        if thread is None:
            return
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            logger.error("audit writer did not drain within %.1f s; stopping anyway", timeout)
        self._hurry.set()
        thread.join(timeout)
        self._thread = None
        if self._db is not None and not thread.is_alive():
            self._db.close()
            self._db = None

    def submit(self, row: PendingRow) -> bool:
        """Queue a row for the writer; False (and counted in `dropped`) when the queue is full. Never blocks."""
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                logger.error("audit queue full: %d row(s) dropped so far", self.dropped)
            return False
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every row submitted before this call is acknowledged; False on timeout or no writer."""
        if self._thread is None:
            return False
        marker = _Flush()
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        self._hurry.set()  # after the put: the writer clears it before it drains, so it drains the marker too
        return marker.done.wait(timeout)

    # --- the writer thread --------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            if self.linger > 0:
                # Let a batch gather without waking this thread per row: the event loop then shares the GIL
                # and the CPU with one short burst per `linger` instead of one per call.
                self._hurry.wait(self.linger)
            self._hurry.clear()  # before draining: a flush whose signal this clears has its marker queued already
            while len(batch) < self.batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            else:
                # A full batch: more is queued, so the next one has nothing to wait for (and a flush or stop
                # queued behind this batch, whose signal was cleared above, is not kept waiting per batch).
                self._hurry.set()
            rows: list[AuditRow] = []
            markers: list[_Flush] = []
            waiting: list[Callable[[], object]] = []
            stop = False
            for item in batch:
                if item is _STOP:
                    stop = True
                elif isinstance(item, _Flush):
                    markers.append(item)
                else:
                    try:
                        rows.append(item.to_row())  # type: ignore[attr-defined]
                    except Exception:
                        self.dropped += 1
                        logger.exception("audit row could not be built; dropped")
                    done: Any = getattr(item, "committed", None)
                    if callable(done):
                        waiting.append(cast(Callable[[], object], done))
            self._write(rows)
            for done in waiting:  # after the commit (or its failure, logged: a waiting call is never stranded)
                try:
                    done()
                except Exception:
                    logger.exception("audit commit callback failed")
            for marker in markers:
                marker.done.set()
            if stop:
                return
            self._prune_if_due()

    def _write(self, rows: list[AuditRow]) -> None:
        if not rows or self._db is None:
            return
        values = [
            (r.event, r.time, r.principal, r.principal_kind, r.client, r.era, r.method, r.server, r.tool,
             r.arguments, r.result_bytes, None if r.is_error is None else int(r.is_error), r.latency_ms,
             r.decision, r.reason)
            for r in rows
        ]  # fmt: skip
        try:
            try:
                self._insert(values)
            except UnicodeEncodeError:
                # A lone surrogate (JSON's "\ud800" escape survives json.loads) has no UTF-8 form, so SQLite
                # cannot bind it: the batch is stored with U+FFFD in its place rather than lost.
                self._rollback()
                self._insert([tuple(storable(v) if isinstance(v, str) else v for v in row) for row in values])
        except Exception:  # whatever it was, the writer goes on: a dead writer would lose every later row
            self.dropped += len(rows)
            logger.exception("audit batch of %d row(s) could not be written", len(rows))
            self._rollback()
            return
        self.committed += len(rows)
        if self.on_commit is not None:
            try:
                self.on_commit([r.event for r in rows])
            except Exception:
                logger.exception("audit on_commit callback failed")

    def _insert(self, values: Sequence[tuple[object, ...]]) -> None:
        assert self._db is not None
        self._db.execute("BEGIN IMMEDIATE")
        self._db.executemany(_INSERT, values)
        self._db.execute("COMMIT")

    def _rollback(self) -> None:
        if self._db is not None and self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def _prune_if_due(self) -> None:
        now = self.clock()
        if self.retention_days is None or now - self._last_prune < _PRUNE_EVERY or self._db is None:
            return
        self._last_prune = now
        try:
            self._db.execute("DELETE FROM audit WHERE time < ?", (now - self.retention_days * 86400.0,))
        except sqlite3.Error:
            logger.exception("audit retention pruning failed")

    # --- reading ------------------------------------------------------------------------------------------------

    def query(
        self,
        *,
        since: float | None = None,
        principal: str | None = None,
        tool: str | None = None,
        limit: int | None = None,
    ) -> list[AuditRow]:
        """Rows oldest first, filtered by time (Unix seconds), principal id and tool name (globs allowed).

        Raises:
            StoreError: the file cannot be read.
        """
        where: list[str] = []
        args: list[object] = []
        if since is not None:
            where.append("time >= ?")
            args.append(since)
        if principal is not None:
            where.append("principal GLOB ?")
            args.append(principal)
        if tool is not None:
            where.append("tool GLOB ?")
            args.append(tool)
        sql = f"SELECT {_COLUMNS} FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC" if limit is not None else " ORDER BY seq"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        try:
            db = _connect(self.path, self.synchronous)
            try:
                for statement in _SCHEMA:
                    db.execute(statement)
                found = db.execute(sql, args).fetchall()
            finally:
                db.close()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot read audit log {self.path}: {exc}") from None
        rows = [_row(values) for values in found]
        return rows[::-1] if limit is not None else rows


def _row(values: tuple[object, ...]) -> AuditRow:
    (event, when, principal, kind, client, era, method, server, tool, arguments, size, is_error, latency, decision,
     reason) = values  # fmt: skip
    return AuditRow(
        event=str(event),
        time=float(when),  # type: ignore[arg-type]
        principal=str(principal),
        principal_kind=str(kind),
        client=None if client is None else str(client),
        era=str(era or ""),
        method=str(method),
        server=str(server or ""),
        tool=str(tool or ""),
        arguments=None if arguments is None else str(arguments),
        result_bytes=None if size is None else int(size),  # type: ignore[call-overload]
        is_error=None if is_error is None else bool(is_error),
        latency_ms=float(latency or 0.0),  # type: ignore[arg-type]
        decision=str(decision),
        reason=str(reason or ""),
    )
