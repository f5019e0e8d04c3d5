"""Redaction of secrets in audited arguments: by key name and by value pattern, then a size cap.

Owns `Redactor`. Does not own where rows go (store/audit.py) or when they are made (audit.py). Runs on the
audit writer thread, never on the call path.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, cast

__all__ = ["COMPACT_JSON", "REDACTED", "SECRET_VALUE_PATTERNS", "Redactor"]

REDACTED = "[REDACTED]"
_LEAVES: frozenset[type] = frozenset({int, float, bool})
COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
"""Compact JSON, non-ASCII kept, anything else as its `str`: what `serialize` and audit rows write (built once:
`json.dumps` with these options builds an encoder per call)."""

SECRET_VALUE_PATTERNS: tuple[str, ...] = (
    r"(?i:\bbearer\s+[A-Za-z0-9._~+/=-]{8,})",
    r"\beyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*",  # a JWT
    r"\bsy_[A-Za-z0-9]{6,}_[A-Za-z0-9_-]{16,}",  # a Switchyard API key
    r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",  # AWS access key id
    r"\bgh[pousr]_[A-Za-z0-9]{30,}\b",  # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{40,}\b",
    r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}",  # OpenAI / Anthropic style keys
    r"\bxox[abpors]-[A-Za-z0-9-]{10,}",  # Slack
    r"\bAIza[0-9A-Za-z_-]{35}\b",  # Google API key
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
    r"(?i:\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@)",  # credentials inside a URL
)


class Redactor:
    """Replaces secret values in a JSON tree and caps its serialized size.

    A value is replaced when its key matches one of `keys` (case-insensitive globs, e.g. "*token*"), or, for a
    string, every match of a secret pattern inside it is replaced.
    """

    def __init__(self, keys: Iterable[str], max_bytes: int, patterns: Iterable[str] = SECRET_VALUE_PATTERNS) -> None:
        globs = [fnmatch.translate(k.lower()) for k in keys]
        self._keys = re.compile("|".join(globs)) if globs else None
        self._values = re.compile("|".join(f"(?:{p})" for p in patterns))
        self.max_bytes = max_bytes

    def _key_is_secret(self, key: str) -> bool:
        return self._keys is not None and self._keys.match(key.lower()) is not None

    def redact(self, value: Any) -> Any:
        """A copy of a JSON-like tree with secrets replaced by `REDACTED`."""
        if value is None or type(value) in _LEAVES:  # the common leaves, checked cheaply  # pyright: ignore[reportUnknownArgumentType]
            return value
        if isinstance(value, str):
            return self._values.sub(REDACTED, value) if value else value
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for k, v in cast(Mapping[Any, Any], value).items():
                key = str(k)
                out[key] = REDACTED if self._key_is_secret(key) else self.redact(v)
            return out
        if isinstance(value, list | tuple):
            return [self.redact(v) for v in cast(Iterable[Any], value)]
        return value

    def serialize(self, value: Any) -> str:
        """Redacted JSON text of at most about `max_bytes`; a larger value becomes a truncated preview object."""
        text = COMPACT_JSON.encode(self.redact(value))
        encoded = text.encode("utf-8", "surrogatepass")  # a lone surrogate counts 3 bytes (the store replaces it)
        size = len(encoded)
        if size <= self.max_bytes:
            return text
        preview = encoded[: max(0, self.max_bytes - 64)].decode("utf-8", errors="ignore")
        return json.dumps({"$truncated": size, "preview": preview}, ensure_ascii=False)
