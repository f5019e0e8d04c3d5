"""The bridge from the catalog to the scanner: which tools the start-up scan holds, and why.

Owns: building the scan context over every federated tool and turning a verdict into a one-line quarantine
reason when its worst finding reaches the configured severity. Does not own rules (security/) or holds (pins.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from switchyard.catalog.catalog import Catalog
from switchyard.catalog.pins import Scan
from switchyard.security import ScanContext, Scanner, Severity, item_from_definition

__all__ = ["make_scan"]


def make_scan(catalog: Catalog, quarantine_at: str, scanner: Scanner | None = None) -> Scan:
    """A `Scan` for this catalog: cross-server rules see every server's tools."""
    scanner = scanner or Scanner()
    threshold = Severity.parse(quarantine_at)
    items = [item_from_definition("tool", e.server, e.definition) for e in catalog.tools.values()]
    context = ScanContext(items)

    def scan(server: str, definition: Mapping[str, Any]) -> str | None:
        verdict = scanner.scan_item(item_from_definition("tool", server, definition), context)
        worst = [f for f in verdict.findings if f.severity.rank >= threshold.rank]
        if not worst:
            return None
        top = max(worst, key=lambda f: f.severity.rank)
        more = f" (+{len(worst) - 1} more)" if len(worst) > 1 else ""
        return f"the scanner found {top.severity.value}: {top.rule_id} in {top.field}: {top.message}{more}"

    return scan
