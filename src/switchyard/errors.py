"""The one exception tree of Switchyard and the one place errors become wire errors.

Owns: every exception Switchyard raises on purpose, and `to_error_data`, the single function that turns any
exception into a JSON-RPC `ErrorData` for a client. Does not own: logging policy (callers log), or errors that
arrive from upstream servers (those are `UpstreamError` and keep the upstream's code and message).

```
SwitchyardError                      base; never raised itself
├── ConfigError                      the configuration file is unusable (carries every problem found)
├── StoreError                       the embedded or external store failed
├── Unauthenticated                  an HTTP request's credential is missing or invalid (HTTP 401, not JSON-RPC)
├── UpstreamError                    an upstream answered with a JSON-RPC error (code/message/data kept)
├── UpstreamUnavailable              an upstream is down, crashed, or not yet connected
│   └── UpstreamTimeout              an upstream did not answer within the call timeout
└── GatewayError                     a refusal decided by the gateway itself, mapped to a wire code
    ├── NotFound                     unknown tool / prompt / resource
    │   └── Hidden                   exists, but policy hides it from this caller (same wire error)
    ├── InvalidRequest               the client's request is malformed for the gateway
    ├── Quarantined                  the item is held by pinning or the scanner until approved
    ├── PolicyDenied                 visibility / flow policy refused the call
    └── RateLimited                  a rate limit or concurrency cap refused the call (retry hint)
```

An unknown exception is never shown to a client: it becomes an internal error carrying a correlation id that
is also written to the log with the traceback.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, ErrorData

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "GatewayError",
    "Hidden",
    "InvalidRequest",
    "NotFound",
    "PolicyDenied",
    "Quarantined",
    "RateLimited",
    "StoreError",
    "SwitchyardError",
    "Unauthenticated",
    "UpstreamError",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "to_error_data",
]

logger = logging.getLogger("switchyard.errors")

# Gateway-specific codes live outside the spec's reserved -32020..-32099 band and the JSON-RPC -32600..-32700 band.
UPSTREAM_UNAVAILABLE = -31001
UPSTREAM_TIMEOUT = -31002
QUARANTINED = -31003
POLICY_DENIED = -31004
RATE_LIMITED = -31005


class SwitchyardError(Exception):
    """Base of every exception Switchyard raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in a configuration file: where it is, what is wrong, and what is allowed."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(SwitchyardError):
    """The configuration cannot be used; `problems` lists every problem found, not just the first."""

    def __init__(self, problems: Sequence[ConfigProblem], source: str | None = None) -> None:
        self.problems = tuple(problems)
        self.source = source
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} configuration problem(s){where}:\n{lines}")


class StoreError(SwitchyardError):
    """The store (SQLite by default) could not be read or written."""


class Unauthenticated(SwitchyardError):
    """A credential was presented and is not valid. Answered with HTTP 401 by the HTTP front; `reason` is
    logged, and only `description` (which never says which check failed in a useful way) is sent."""

    def __init__(self, reason: str, description: str = "the access token is invalid") -> None:
        self.reason = reason
        self.description = description
        super().__init__(reason)


class UpstreamError(SwitchyardError):
    """An upstream server answered with a JSON-RPC error; its code, message and data are kept as they were."""

    def __init__(self, server: str, code: int, message: str, data: Any = None) -> None:
        self.server = server
        self.code = code
        self.message = message
        self.data = data
        self.guard: Mapping[str, Any] | None = None
        """What the output guard found in the error's text (its `io.switchyard/guard` entry), for the flow
        policy; never sent on the wire."""
        super().__init__(f"{server}: {message} ({code})")


class UpstreamUnavailable(SwitchyardError):
    """An upstream server is down, crashed during the call, or is not connected yet."""

    code = UPSTREAM_UNAVAILABLE

    def __init__(self, server: str, reason: str) -> None:
        self.server = server
        self.reason = reason
        super().__init__(f"upstream server '{server}' is unavailable: {reason}")


class UpstreamTimeout(UpstreamUnavailable):
    """An upstream server did not answer within the call timeout."""

    code = UPSTREAM_TIMEOUT

    def __init__(self, server: str, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(server, f"no answer within {seconds:g} s")


class GatewayError(SwitchyardError):
    """A refusal decided by the gateway; `code` is the JSON-RPC code sent to the client."""

    code: int = INVALID_REQUEST

    def __init__(self, message: str, data: Any = None) -> None:
        self.message = message
        self.data = data
        super().__init__(message)


class NotFound(GatewayError):
    """No such tool, prompt or resource, or one the caller may not see (the message never says which)."""

    code = INVALID_PARAMS


class Hidden(NotFound):
    """The item exists but policy hides it from the caller. On the wire it is exactly the `NotFound` a
    nonexistent name gets (same code, message and data); only the audit log knows the difference."""

    def __init__(self, message: str, reason: str, data: Any = None) -> None:
        self.reason = reason
        super().__init__(message, data)


class InvalidRequest(GatewayError):
    """The request is malformed for the gateway."""

    code = INVALID_PARAMS


class Quarantined(GatewayError):
    """The item is quarantined (changed definition or scanner finding) until someone approves it."""

    code = QUARANTINED


class PolicyDenied(GatewayError):
    """Policy refused the request."""

    code = POLICY_DENIED


class RateLimited(GatewayError):
    """A rate limit or concurrency cap refused the request; `retry_after` is a hint in seconds."""

    code = RATE_LIMITED

    def __init__(self, message: str, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(message, {"retryAfterSeconds": round(retry_after, 3)})


def to_error_data(exc: BaseException) -> ErrorData:
    """Turn any exception into the `ErrorData` a client receives. The only place this mapping happens.

    Upstream errors keep their code, message and data. Gateway errors use their class's code. SDK `MCPError`s
    raised inside the gateway pass through. Anything else becomes an internal error with a correlation id;
    its text is logged, never sent.
    """
    if isinstance(exc, UpstreamError):
        return ErrorData(code=exc.code, message=exc.message, data=exc.data)
    if isinstance(exc, UpstreamUnavailable):
        return ErrorData(code=exc.code, message=str(exc), data={"server": exc.server})
    if isinstance(exc, GatewayError):
        return ErrorData(code=exc.code, message=exc.message, data=exc.data)
    if isinstance(exc, MCPError):
        return exc.error
    correlation = uuid.uuid4().hex[:12]
    logger.error("internal error %s", correlation, exc_info=exc)
    return ErrorData(code=INTERNAL_ERROR, message=f"Internal error (correlation id {correlation})")
