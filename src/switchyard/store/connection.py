"""Opening the store's SQLite file: the one place its connection settings live.

Owns: creating the parent folder, the connection flags (shared between threads, autocommit so callers write
explicit transactions) and the pragmas every table in the file relies on (WAL, a bounded busy wait). Does not
own any table.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from switchyard.errors import StoreError

__all__ = ["open_sqlite"]


def open_sqlite(path: Path, *, schema: str | None = None, what: str = "store") -> sqlite3.Connection:
    """Open (creating if needed) the SQLite file at `path`, in WAL mode, running `schema` if given.

    Raises:
        StoreError: the file cannot be opened or the schema cannot be applied.
    """
    try:
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA busy_timeout=5000")
        if schema is not None:
            db.execute(schema)
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(f"cannot open {what} {path}: {exc}") from None
    return db
