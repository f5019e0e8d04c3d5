"""Federated names: `<server><sep><item>`, always valid for the strictest common clients.

Owns: forming a name from a server and an item name, sanitising and shortening it deterministically to match
`^[a-zA-Z0-9_-]{1,64}$`, and nothing else (collisions are the catalog's).
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["MAX_NAME", "federated_name", "is_valid_name", "sanitize", "short_hash"]

MAX_NAME = 64
_VALID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_INVALID_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def is_valid_name(name: str) -> bool:
    """Whether `name` is acceptable to the strictest common clients."""
    return _VALID.match(name) is not None


def sanitize(text: str) -> str:
    """Replace every character outside `[A-Za-z0-9_-]` by `_`."""
    return _INVALID_CHARS.sub("_", text) or "_"


def short_hash(*parts: str) -> str:
    """Eight hex digits identifying `parts`; stable across runs and machines."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8]


def federated_name(server: str, item: str, *, separator: str = "__", prefix: bool = True) -> str:
    """The client-facing name of `item` from `server`.

    A name that needed sanitising or is too long gets a short hash of the original server and item names, so
    two different originals never meet in one name. The same inputs always give the same name.
    """
    raw = f"{server}{separator}{item}" if prefix else item
    clean = sanitize(raw)
    if clean == raw and len(clean) <= MAX_NAME:
        return clean
    tag = short_hash(server, item)
    return f"{clean[: MAX_NAME - len(tag) - 1]}_{tag}"
