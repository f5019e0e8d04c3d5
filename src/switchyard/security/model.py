"""The scanner's data model: what is scanned (`ScanItem`), what a rule reports (`Finding`), and verdicts.

Owns: the frozen dataclasses shared by the engine, the rules and the reports, the severity scale and the
item kinds. Does not own: how findings are produced (rules), combined (engine) or printed (reports).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

__all__ = [
    "Evidence",
    "Finding",
    "ItemKind",
    "ItemVerdict",
    "ScanItem",
    "ScanReport",
    "Severity",
]

ItemKind = Literal["tool", "prompt", "resource", "resource_template", "server_instructions", "tool_output"]
"""What an item is: a definition from a `*/list` call, a server's instructions, or a tool result."""


class Severity(StrEnum):
    """How bad a finding is, ordered from `info` to `critical` (compare with `rank`)."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for info up to 4 for critical."""
        return _RANK[self]

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        """Read a severity from its name, case-insensitively (`"HIGH"` -> `Severity.HIGH`)."""
        if isinstance(value, Severity):
            return value
        try:
            return cls(value.strip().lower())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {value!r}; expected one of {names}") from None


_RANK: dict[Severity, int] = {s: i for i, s in enumerate(Severity)}


@dataclass(frozen=True, slots=True)
class ScanItem:
    """One thing to scan: a definition (tool, prompt, resource, ...) or a tool result.

    Attributes:
        kind: what the item is.
        server: the server that declared it (empty for a one-off text).
        name: the item's name (tool name, prompt name, resource URI, ...).
        fields: every scannable text of the item, keyed by a dotted path such as `description`,
            `inputSchema.properties.path.description` or `inputSchema.properties.path#name` (a parameter's name).
        raw: the definition as received (a JSON object), for rules that need structure.
    """

    kind: ItemKind
    server: str
    name: str
    fields: Mapping[str, str]
    raw: Mapping[str, Any] = field(default_factory=dict[str, Any])

    @property
    def key(self) -> tuple[str, str, str]:
        """A stable identity `(server, kind, name)` used to group findings per item."""
        return (self.server, self.kind, self.name)


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where a finding is: an excerpt of one field and the matched span in that field's text.

    `start`/`end` are offsets into the field's original text (Python string indices, end exclusive);
    `excerpt` is the surrounding text with invisible characters made visible (`<U+200B>`).
    """

    excerpt: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule's observation about one field of one item, with its explanation and its weight.

    `score` is the contribution to the item's score in [0, 1]; the engine fills it from the severity and the
    rule's `weight` (a rule may say a match is weaker or stronger than its severity alone suggests).
    """

    rule_id: str
    severity: Severity
    server: str
    item: str
    kind: ItemKind
    field: str
    evidence: Evidence
    message: str
    why: str
    fix: str
    weight: float = 1.0
    score: float = 0.0
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ItemVerdict:
    """The combined judgement on one item: its score, whether it crosses the threshold, and its findings."""

    item: ScanItem
    score: float
    malicious: bool
    findings: tuple[Finding, ...]

    @property
    def max_severity(self) -> Severity | None:
        """The worst severity among the findings, or None when there are none."""
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=lambda s: s.rank)


@dataclass(frozen=True, slots=True)
class ScanReport:
    """Everything one scan produced: a verdict per item, in input order, and the rules that ran."""

    verdicts: tuple[ItemVerdict, ...]
    rules: tuple[tuple[str, str, str], ...] = ()
    """(rule id, title, documentation) of every enabled rule, for reports that describe rules (SARIF)."""

    @property
    def findings(self) -> tuple[Finding, ...]:
        """All findings of all items, in item order."""
        return tuple(f for v in self.verdicts for f in v.findings)

    def at_least(self, severity: Severity) -> tuple[Finding, ...]:
        """The findings whose severity is `severity` or worse (for `--fail-on`)."""
        return tuple(f for f in self.findings if f.severity.rank >= severity.rank)
