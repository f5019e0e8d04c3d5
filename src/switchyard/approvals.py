"""Approvals of individual tool calls by a human, persisted so another process (`switchyard approve-call`) can
give them.

Owns: the approval id of a call (a digest of who calls which tool with which arguments, so the same call retried
finds its approval), the `call_approvals` table in the gateway's SQLite store, and its states: `pending` (the
gateway refused the call and said how to approve it), `approved` or `denied` (by the CLI, or by the user
answering an elicitation). A decision holds until its expiry (`flows.approvals.ttl` seconds), so the same call
retried within that time passes without asking again. Does not own when a call needs approval (stages/flows.py)
or how the user is asked (stages/approval.py).

Only a redacted preview of the arguments is stored (secret keys and secret values replaced).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from switchyard.errors import NotFound, StoreError
from switchyard.store.connection import open_sqlite

__all__ = ["ApprovalStatus", "CallApproval", "SqliteApprovalStore", "approval_id"]

ApprovalStatus = Literal["pending", "approved", "denied"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS call_approvals (
    id TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    server TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL,
    reason TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    status TEXT NOT NULL,
    decided REAL,
    decided_by TEXT NOT NULL DEFAULT ''
)
"""
_COLUMNS = "id, principal, server, tool, arguments, reason, created, expires, status, decided, decided_by"


def approval_id(principal: str, server: str, tool: str, arguments: Any) -> str:
    """The id of one call: the same caller, server, tool and arguments always give the same id (16 hex digits).

    The server is part of it because a federated name can move from one server to another (a collision that
    resolves differently once a server's tools change): a yes for one server's tool is not one for another's.
    """
    canonical = json.dumps(
        {"p": principal, "s": server, "t": tool, "a": arguments}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class CallApproval:
    """One call waiting for, or carrying, a human decision."""

    id: str
    principal: str
    server: str
    tool: str
    arguments: str
    reason: str
    created: float
    expires: float
    status: ApprovalStatus
    decided: float | None = None
    decided_by: str = ""

    def valid(self, now: float) -> bool:
        """Whether the record still counts (not expired)."""
        return now < self.expires


class SqliteApprovalStore:
    """Approvals in the store file (its own table); safe to share between threads of one process."""

    def __init__(self, path: Path | str) -> None:
        """Open (creating if needed) the table in the SQLite file at `path`.

        Raises:
            StoreError: the file cannot be opened.
        """
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = open_sqlite(self.path, schema=_SCHEMA, what="the approvals table in")

    def _row(self, approval_id: str) -> CallApproval | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM call_approvals WHERE id = ?", (approval_id,)).fetchone()
        return None if row is None else CallApproval(*cast(tuple[Any, ...], row))

    def get(self, approval_id: str) -> CallApproval | None:
        """The record with this id, if any (expired ones included)."""
        with self._lock:
            return self._row(approval_id)

    def request(self, pending: CallApproval, now: float) -> CallApproval:
        """The current record for `pending.id`: an unexpired existing one as it is, else `pending`, stored."""
        with self._lock:
            try:
                existing = self._row(pending.id)
                if existing is not None and existing.valid(now):
                    return existing
                self._db.execute(
                    f"INSERT OR REPLACE INTO call_approvals ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        pending.id, pending.principal, pending.server, pending.tool, pending.arguments,
                        pending.reason, pending.created, pending.expires, pending.status, pending.decided,
                        pending.decided_by,
                    ),
                )  # fmt: skip
            except sqlite3.Error as exc:
                raise StoreError(f"cannot record an approval request: {exc}") from None
            return pending

    def decide(self, approval_id: str, approve: bool, *, now: float, ttl: float, by: str) -> CallApproval:
        """Approve or deny a pending (or earlier decided, unexpired) call; the decision holds for `ttl` seconds.

        Raises:
            NotFound: no such call, or its request expired.
        """
        with self._lock:
            found = self._row(approval_id)
            if found is None or not found.valid(now):
                raise NotFound(f"no pending call with id {approval_id} (unknown or expired; retry the call first)")
            status: ApprovalStatus = "approved" if approve else "denied"
            try:
                self._db.execute(
                    "UPDATE call_approvals SET status = ?, decided = ?, decided_by = ?, expires = ? WHERE id = ?",
                    (status, now, by, now + ttl, approval_id),
                )
            except sqlite3.Error as exc:
                raise StoreError(f"cannot record the decision: {exc}") from None
            updated = self._row(approval_id)
            assert updated is not None
            return updated

    def listing(self, now: float, *, everything: bool = False) -> list[CallApproval]:
        """Unexpired records, newest first: pending ones only unless `everything`."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM call_approvals WHERE expires > ? ORDER BY created DESC", (now,)
            ).fetchall()
        found = [CallApproval(*cast(tuple[Any, ...], r)) for r in rows]
        return found if everything else [a for a in found if a.status == "pending"]

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()
