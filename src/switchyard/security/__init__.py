"""Threat scanning for MCP definitions and tool results: a rule engine, its rules, sources and reports.

Owns: the public API the gateway, the CLI and the output guard call. Does not own: connecting to servers,
pinning, quarantine or the `switchyard scan` command (those build on this API).

    from switchyard.security import Scanner, items_from_file, scan_text
    report = Scanner().scan(items_from_file("tools.json"))
    verdict = scan_text(tool_result_text)        # output guard
"""

from __future__ import annotations

from switchyard.security.engine import (
    DEFAULT_SEVERITY_WEIGHTS,
    Rule,
    ScanContext,
    Scanner,
    ScanPolicy,
    default_scanner,
    redact,
    redaction_spans,
    scan_text,
)
from switchyard.security.model import Evidence, Finding, ItemKind, ItemVerdict, ScanItem, ScanReport, Severity
from switchyard.security.rules import default_rules
from switchyard.security.sources import LabelledItem, items_from_definitions, items_from_file, load_corpus
from switchyard.security.text import item_from_definition, make_visible

__all__ = [
    "DEFAULT_SEVERITY_WEIGHTS",
    "Evidence",
    "Finding",
    "ItemKind",
    "ItemVerdict",
    "LabelledItem",
    "Rule",
    "ScanContext",
    "ScanItem",
    "ScanPolicy",
    "ScanReport",
    "Scanner",
    "Severity",
    "default_rules",
    "default_scanner",
    "item_from_definition",
    "items_from_definitions",
    "items_from_file",
    "load_corpus",
    "make_visible",
    "redact",
    "redaction_spans",
    "scan_text",
]
