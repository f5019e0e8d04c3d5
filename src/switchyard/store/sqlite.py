"""`SqliteStore`: the embedded default store, one SQLite file in WAL mode.

Owns the schema (created and migrated on open, versioned by `PRAGMA user_version`) and the pin queries.
Does not own retrieval vectors (retrieval/vector_cache.py keeps its own table in the same file) or policy.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from switchyard.errors import StoreError
from switchyard.store.base import Pin
from switchyard.store.connection import open_sqlite

__all__ = ["SqliteStore"]

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS pins (
        server TEXT NOT NULL,
        tool TEXT NOT NULL,
        digest TEXT NOT NULL,
        definition TEXT NOT NULL,
        approved_at REAL NOT NULL,
        PRIMARY KEY (server, tool)
    );
    """,
    "ALTER TABLE pins ADD COLUMN source TEXT NOT NULL DEFAULT 'first-use'",
)


class SqliteStore:
    """Pins in a SQLite file; safe to share between threads of one process."""

    def __init__(self, path: Path | str) -> None:
        """Open (creating and migrating if needed) the store at `path`.

        Raises:
            StoreError: the file cannot be opened or migrated.
        """
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = open_sqlite(self.path)
        try:
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from None

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        for index, script in enumerate(_MIGRATIONS[version:], start=version + 1):
            self._db.execute("BEGIN")
            self._db.execute(script)
            self._db.execute(f"PRAGMA user_version={index}")
            self._db.execute("COMMIT")

    def pins(self, server: str) -> dict[str, Pin]:
        """Every pin of one server, by tool name."""
        with self._lock:
            rows = self._db.execute(
                "SELECT server, tool, digest, definition, approved_at, source FROM pins WHERE server = ?", (server,)
            ).fetchall()
        return {row[1]: Pin(*row) for row in rows}

    def put_pins(self, pins: list[Pin]) -> None:
        """Insert or replace pins in one transaction."""
        if not pins:
            return
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT OR REPLACE INTO pins (server, tool, digest, definition, approved_at, source)"
                    " VALUES (?,?,?,?,?,?)",
                    [(p.server, p.tool, p.digest, p.definition, p.approved_at, p.source) for p in pins],
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise StoreError(f"cannot write pins: {exc}") from None

    def servers(self) -> set[str]:
        """Servers with at least one pin."""
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT DISTINCT server FROM pins")}

    def data_version(self) -> int:
        """Changes whenever another connection (another process, e.g. `switchyard approve`) commits."""
        with self._lock:
            return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()
