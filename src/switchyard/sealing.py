"""Sealed `requestState` envelopes for input-required (MRTR) round trips across the gateway.

Owns: wrapping an upstream's opaque `requestState` in Switchyard's own HMAC-SHA256 envelope, bound to the
caller, the server, the item (tool, prompt or URI) and an expiry, and checking all of that when a client
retries. A client can therefore neither tamper with the state nor redirect a retry to another server or tool.
Keys come from configuration or `SWITCHYARD_SEALING_KEYS` (comma-separated); the first signs, all verify, so
keys can be rotated. Several gateway processes behind one port must share the keys. Does not own the MRTR
loop itself (server/mrtr.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from switchyard.errors import InvalidRequest

__all__ = ["SealedState", "Sealer"]

logger = logging.getLogger("switchyard.sealing")

_PREFIX = "sy1."


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class SealedState:
    """What an envelope carries once opened."""

    server: str
    item: str
    principal: str
    state: Any
    expires: float


class Sealer:
    """Seals and opens `requestState` envelopes."""

    def __init__(
        self,
        keys: Sequence[str] = (),
        *,
        ttl: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Use `keys` (else `$SWITCHYARD_SEALING_KEYS`, else a random key for this process only)."""
        raw = list(keys) or [k for k in os.environ.get("SWITCHYARD_SEALING_KEYS", "").split(",") if k.strip()]
        if not raw:
            logger.info("no sealing key configured: using a per-process key (multi-process needs a shared key)")
            raw = [secrets.token_hex(32)]
        self._keys = [hashlib.sha256(k.strip().encode()).digest() for k in raw]
        self.ttl = ttl
        self._clock = clock

    def _mac(self, key: bytes, body: bytes) -> bytes:
        return hmac.new(key, body, hashlib.sha256).digest()

    def seal(self, *, server: str, item: str, principal: str, state: Any) -> str:
        """An envelope around `state`, valid for `ttl` seconds, for this caller, server and item only."""
        payload = {"srv": server, "it": item, "sub": principal, "st": state, "exp": self._clock() + self.ttl}
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        return _PREFIX + _b64(body) + "." + _b64(self._mac(self._keys[0], body))

    def open(self, token: Any, *, principal: str, item: str | None = None) -> SealedState:
        """Check and open an envelope a client sent back.

        Raises:
            InvalidRequest: forged, tampered, expired, or bound to another caller or item.
        """
        if not isinstance(token, str) or not token.startswith(_PREFIX) or "." not in token[len(_PREFIX) :]:
            raise InvalidRequest("requestState is not one this gateway issued")
        body_text, mac_text = token[len(_PREFIX) :].rsplit(".", 1)
        try:
            body, mac = _unb64(body_text), _unb64(mac_text)
        except ValueError:
            raise InvalidRequest("requestState is malformed") from None
        if not any(hmac.compare_digest(mac, self._mac(key, body)) for key in self._keys):
            raise InvalidRequest("requestState failed its integrity check")
        payload: Mapping[str, Any] = json.loads(body)
        if float(payload["exp"]) < self._clock():
            raise InvalidRequest("requestState has expired; start the request again")
        if payload["sub"] != principal:
            raise InvalidRequest("requestState was issued to another caller")
        if item is not None and payload["it"] != item:
            raise InvalidRequest("requestState was issued for another tool, prompt or resource")
        return SealedState(
            server=str(payload["srv"]),
            item=str(payload["it"]),
            principal=str(payload["sub"]),
            state=payload["st"],
            expires=float(payload["exp"]),
        )
