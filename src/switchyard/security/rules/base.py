"""Building blocks for rules: the kind sets, `RuleBase` (builds findings with the rule's explanations), and
helpers to choose which fields of an item a rule reads.

Owns: nothing that detects; every rule family module imports from here. Does not own: the `Rule` Protocol
(`security.engine`), scoring, or policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from switchyard.security.model import Finding, ItemKind, ScanItem, Severity
from switchyard.security.text import evidence

__all__ = [
    "ALL_KINDS",
    "DEFINITION_KINDS",
    "OUTPUT_KINDS",
    "RuleBase",
    "name_fields",
    "prose_fields",
]

DEFINITION_KINDS: frozenset[ItemKind] = frozenset(
    {"tool", "prompt", "resource", "resource_template", "server_instructions"}
)
OUTPUT_KINDS: frozenset[ItemKind] = frozenset({"tool_output"})
ALL_KINDS: frozenset[ItemKind] = DEFINITION_KINDS | OUTPUT_KINDS

_NOT_PROSE_SUFFIXES = ("#name", ".enum", ".const", ".default", ".examples")
_NOT_PROSE_KEYS = frozenset({"name", "uri", "uriTemplate", "mimeType"})


def prose_fields(item: ScanItem) -> Iterator[tuple[str, str]]:
    """Fields written as sentences for a reader: descriptions, titles, instructions, a tool result's text."""
    for key, text in item.fields.items():
        if key in _NOT_PROSE_KEYS or key.endswith(_NOT_PROSE_SUFFIXES):
            continue
        yield key, text


def name_fields(item: ScanItem) -> Iterator[tuple[str, str]]:
    """Identifier fields: the item's name and its parameters' names."""
    for key, text in item.fields.items():
        if key == "name" or key.endswith("#name"):
            yield key, text


class RuleBase:
    """Shared plumbing for rules: identity, documentation, and a `finding` builder.

    Subclasses set the class attributes and implement `check(item, context)`.
    """

    id: str
    title: str
    severity: Severity
    doc: str
    why: str
    fix: str
    kinds: frozenset[ItemKind] = DEFINITION_KINDS

    def finding(
        self,
        item: ScanItem,
        field: str,
        start: int,
        end: int,
        message: str,
        *,
        severity: Severity | None = None,
        weight: float = 1.0,
        tags: tuple[str, ...] = (),
    ) -> Finding:
        """A finding of this rule on `item.fields[field][start:end]`, with the rule's why and fix."""
        text = item.fields.get(field, "")
        return Finding(
            rule_id=self.id,
            severity=severity or self.severity,
            server=item.server,
            item=item.name,
            kind=item.kind,
            field=field,
            evidence=evidence(text, start, end),
            message=message,
            why=self.why,
            fix=self.fix,
            weight=weight,
            tags=tags,
        )
