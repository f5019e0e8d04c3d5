"""Text report for people, rendered with rich: items ordered by score, each finding with evidence, why and fix.

Owns: the human-readable layout. Does not own: colours in terminals without support (rich decides) or paging.
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from switchyard.security.model import ScanReport, Severity

__all__ = ["to_text"]

_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


def to_text(
    report: ScanReport,
    *,
    min_severity: Severity = Severity.LOW,
    color: bool = False,
    width: int = 120,
    console: Console | None = None,
) -> str:
    """Render the report; findings below `min_severity` are left out. Returns the text (also printed to
    `console` when one is given, e.g. a terminal console with colours)."""
    out = console or Console(
        file=io.StringIO(), force_terminal=color, no_color=not color, width=width, highlight=False, soft_wrap=False
    )
    verdicts = sorted(report.verdicts, key=lambda v: (-v.score, v.item.server, v.item.name))
    shown = 0
    for v in verdicts:
        findings = [f for f in v.findings if f.severity.rank >= min_severity.rank]
        if not findings:
            continue
        shown += 1
        verdict = "[bold red]MALICIOUS[/]" if v.malicious else "[yellow]suspicious[/]"
        out.print(
            f"{verdict} {escape(v.item.server)} / {v.item.kind} [bold]{escape(v.item.name)}[/] score {v.score:.2f}"
        )
        for f in findings:
            out.print(
                Text.assemble(
                    "  ",
                    (f"{f.severity.value.upper():8}", _STYLE[f.severity]),
                    f" {f.rule_id} ",
                    (f.field, "bold"),
                    f": {f.message}",
                )
            )
            out.print(Text(f"      evidence [{f.evidence.start}:{f.evidence.end}]: {f.evidence.excerpt}", style="dim"))
            out.print(Text(f"      why: {f.why}"))
            out.print(Text(f"      fix: {f.fix}"))
    flagged = sum(1 for v in report.verdicts if v.malicious)
    out.print(f"{len(report.verdicts)} item(s) scanned, {shown} with findings, {flagged} judged malicious.")
    file = out.file
    return file.getvalue() if isinstance(file, io.StringIO) else ""
