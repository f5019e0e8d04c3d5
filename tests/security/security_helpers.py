"""Builders shared by the security tests: tools and results written for the tests, not taken from any corpus."""

from __future__ import annotations

from typing import Any

from switchyard.security import ItemVerdict, ScanItem, Scanner, item_from_definition
from switchyard.security.engine import ScanContext

SCANNER = Scanner()


def tool(
    name: str = "lookup",
    description: str = "Look up a record by id.",
    server: str = "srv",
    params: dict[str, Any] | None = None,
) -> ScanItem:
    """A tool definition as a server would list it."""
    schema: dict[str, Any] = {"type": "object", "properties": params or {"id": {"type": "string"}}}
    return item_from_definition("tool", server, {"name": name, "description": description, "inputSchema": schema})


def rule_ids(item: ScanItem, context: ScanContext | None = None) -> set[str]:
    """The ids of the rules that fired on `item`."""
    return {f.rule_id for f in SCANNER.scan_item(item, context).findings}


def verdict(item: ScanItem, context: ScanContext | None = None) -> ItemVerdict:
    """The default scanner's verdict on one item."""
    return SCANNER.scan_item(item, context)


def output(text: str) -> ItemVerdict:
    """The default scanner's verdict on one tool result."""
    return SCANNER.scan_text(text)
