"""`SqliteKeyStore`: API keys for the HTTP front, stored hashed in the gateway's SQLite file.

Owns the `api_keys` table, minting keys, verifying a presented key, listing and revoking. Does not own the
HTTP side (server/auth.py) or what a key's principal may do (stages/policy.py).

A key reads `sy_<id>_<secret>`: `id` (12 hex digits) finds the row, `secret` (32 random bytes, URL-safe
base64) is checked against `sha256(salt || secret)` with a constant-time comparison. A fast hash is the right
tool here: the secret has 256 bits of entropy, so there is nothing for a slow KDF to protect against, and
every request verifies a key. The plaintext is returned once, by `create`, and never stored or logged.
Every verification reads the row, so a revocation (from another process too) applies to the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from switchyard.errors import StoreError
from switchyard.store.connection import open_sqlite

__all__ = ["KEY_PREFIX", "ApiKey", "SqliteKeyStore"]

KEY_PREFIX = "sy_"
_KEY = re.compile(r"^sy_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    groups TEXT NOT NULL,
    salt BLOB NOT NULL,
    digest BLOB NOT NULL,
    created REAL NOT NULL,
    revoked REAL,
    note TEXT NOT NULL DEFAULT ''
)
"""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's public facts (never its secret)."""

    id: str
    principal: str
    groups: tuple[str, ...]
    created: float
    revoked: float | None
    note: str


def _digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode("ascii")).digest()


class SqliteKeyStore:
    """API keys in a SQLite file (WAL), safe to share between threads."""

    def __init__(self, path: Path | str) -> None:
        """Open (creating if needed) the key table at `path`.

        Raises:
            StoreError: the file cannot be opened.
        """
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = open_sqlite(self.path, schema=_SCHEMA, what="key store")

    def create(self, principal: str, groups: tuple[str, ...] = (), note: str = "") -> tuple[ApiKey, str]:
        """Mint a key for `principal`; returns its record and the plaintext key (shown once, never stored)."""
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        now = time.time()
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO api_keys (id, principal, groups, salt, digest, created, note) VALUES (?,?,?,?,?,?,?)",
                    (key_id, principal, json.dumps(list(groups)), salt, _digest(salt, secret), now, note),
                )
            except sqlite3.Error as exc:
                raise StoreError(f"cannot store key: {exc}") from None
        return ApiKey(key_id, principal, tuple(groups), now, None, note), f"{KEY_PREFIX}{key_id}_{secret}"

    def verify(self, presented: str) -> ApiKey | None:
        """The key's record if `presented` is a valid, unrevoked key; None otherwise."""
        match = _KEY.match(presented)
        if match is None:
            return None
        key_id, secret = match.groups()
        with self._lock:
            row = self._db.execute(
                "SELECT principal, groups, salt, digest, created, revoked, note FROM api_keys WHERE id = ?", (key_id,)
            ).fetchone()
        if row is None:
            _digest(b"\0" * 16, secret)  # the same work whether or not the id exists
            return None
        principal, groups, salt, digest, created, revoked, note = row
        if not hmac.compare_digest(_digest(salt, secret), digest) or revoked is not None:
            return None
        return ApiKey(key_id, principal, tuple(json.loads(groups)), created, revoked, note)

    def list(self) -> list[ApiKey]:
        """Every key, oldest first (revoked ones included, marked)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, principal, groups, created, revoked, note FROM api_keys ORDER BY created"
            ).fetchall()
        return [ApiKey(r[0], r[1], tuple(json.loads(r[2])), r[3], r[4], r[5]) for r in rows]

    def revoke(self, key_id: str) -> bool:
        """Revoke a key by id (or by its full plaintext); False if no such unrevoked key."""
        match = _KEY.match(key_id)
        if match is not None:
            key_id = match.group(1)
        with self._lock:
            cursor = self._db.execute(
                "UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL", (time.time(), key_id)
            )
        return cursor.rowcount > 0

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()
