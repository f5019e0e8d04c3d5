"""Caches of tool vectors keyed by content hash: `VectorCache`, `MemoryVectorCache`, `SqliteVectorCache`.

Owns: storing and fetching embedding vectors by `text_hash(encoder name, text)` so a restart re-embeds nothing
and an update re-embeds only the texts that changed. `SqliteVectorCache` keeps its own table
(`retrieval_vectors`) in a SQLite file in WAL mode, so it can share the gateway's store file.

Does not own: deciding what to embed (`index.py`) or the gateway's other tables (`store/`).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from switchyard.errors import StoreError

__all__ = ["MemoryVectorCache", "SqliteVectorCache", "VectorCache", "text_hash"]


def text_hash(encoder_name: str, text: str) -> str:
    """sha256 hex of the encoder name and the text: the cache key of one vector."""
    return hashlib.sha256(f"{encoder_name}\x00{text}".encode()).hexdigest()


class VectorCache(Protocol):
    """Content-addressed vector storage; implementations must be safe to call from several threads."""

    def get_many(self, hashes: Iterable[str]) -> dict[str, NDArray[np.float32]]:
        """Return the vectors known for `hashes` (missing hashes are simply absent)."""
        ...

    def put_many(self, items: Mapping[str, NDArray[np.float32]]) -> None:
        """Store vectors by hash (overwriting is harmless: same hash, same vector)."""
        ...


class MemoryVectorCache:
    """A dict-backed `VectorCache` for tests and for runs without a store."""

    def __init__(self) -> None:
        self._data: dict[str, NDArray[np.float32]] = {}
        self._lock = threading.Lock()

    def get_many(self, hashes: Iterable[str]) -> dict[str, NDArray[np.float32]]:
        with self._lock:
            return {h: self._data[h] for h in hashes if h in self._data}

    def put_many(self, items: Mapping[str, NDArray[np.float32]]) -> None:
        with self._lock:
            self._data.update(items)

    def __len__(self) -> int:
        return len(self._data)


class SqliteVectorCache:
    """`VectorCache` in a SQLite file (table `retrieval_vectors`, WAL mode, float32 blobs)."""

    _CHUNK = 500  # host-parameter limit friendly

    def __init__(self, path: Path | str) -> None:
        """Open (creating if needed) the cache at `path`.

        Raises:
            StoreError: the file cannot be opened or initialised.
        """
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS retrieval_vectors (hash TEXT PRIMARY KEY, dim INTEGER NOT NULL, "
                "vector BLOB NOT NULL)"
            )
        except (sqlite3.Error, OSError) as exc:  # OSError: its folder cannot be made
            raise StoreError(f"cannot open vector cache {self.path}: {exc}") from exc

    def get_many(self, hashes: Iterable[str]) -> dict[str, NDArray[np.float32]]:
        wanted = list(dict.fromkeys(hashes))
        out: dict[str, NDArray[np.float32]] = {}
        try:
            with self._lock:
                for i in range(0, len(wanted), self._CHUNK):
                    chunk = wanted[i : i + self._CHUNK]
                    marks = ",".join("?" * len(chunk))
                    rows = self._db.execute(
                        f"SELECT hash, dim, vector FROM retrieval_vectors WHERE hash IN ({marks})", chunk
                    ).fetchall()
                    for h, dim, blob in rows:
                        vec = np.frombuffer(blob, dtype=np.float32)
                        if vec.shape[0] == dim:
                            out[str(h)] = vec
        except sqlite3.Error as exc:
            raise StoreError(f"vector cache read failed: {exc}") from exc
        return out

    def put_many(self, items: Mapping[str, NDArray[np.float32]]) -> None:
        rows = [(h, int(v.shape[0]), np.asarray(v, dtype=np.float32).tobytes()) for h, v in items.items()]
        try:
            with self._lock:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO retrieval_vectors VALUES (?, ?, ?)", rows)
                self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"vector cache write failed: {exc}") from exc

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()
