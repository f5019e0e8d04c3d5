"""Store seams: what the gateway persists, as Protocols.

Owns the `PinStore` contract (tool-definition pins and approvals). Backends: `sqlite.py` (embedded default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Pin", "PinStore"]


@dataclass(frozen=True, slots=True)
class Pin:
    """The approved definition of one tool: its hash and the canonical JSON it was computed from."""

    server: str
    tool: str
    digest: str
    definition: str
    approved_at: float
    source: str = "first-use"
    """How the pin was made: "first-use" (trust on first use) or "approve" (a person approved it)."""


class PinStore(Protocol):
    """Persisted pins. Every method is synchronous and fast (local file); callers run it off hot paths."""

    def pins(self, server: str) -> dict[str, Pin]:
        """Every pin of one server, by tool name."""
        ...

    def put_pins(self, pins: list[Pin]) -> None:
        """Insert or replace pins (one transaction)."""
        ...

    def servers(self) -> set[str]:
        """Servers with at least one pin."""
        ...

    def data_version(self) -> int:
        """A number that changes when another process commits (so a running gateway notices approvals)."""
        ...
