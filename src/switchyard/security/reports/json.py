"""JSON report: every verdict and finding as plain data, stable keys, for programs and snapshots.

Owns: the JSON shape of a scan (documented in docs/security-rules.md). Does not own: SARIF (`reports.sarif`).
"""

from __future__ import annotations

import json
from typing import Any

from switchyard.security.model import Finding, ItemVerdict, ScanReport

__all__ = ["finding_to_dict", "report_to_dict", "to_json"]


def finding_to_dict(f: Finding) -> dict[str, Any]:
    """One finding as a JSON object."""
    return {
        "rule_id": f.rule_id,
        "severity": f.severity.value,
        "server": f.server,
        "item": f.item,
        "kind": f.kind,
        "field": f.field,
        "message": f.message,
        "evidence": {"excerpt": f.evidence.excerpt, "start": f.evidence.start, "end": f.evidence.end},
        "why": f.why,
        "fix": f.fix,
        "score": round(f.score, 4),
        "tags": list(f.tags),
    }


def _verdict_to_dict(v: ItemVerdict) -> dict[str, Any]:
    worst = v.max_severity
    return {
        "server": v.item.server,
        "kind": v.item.kind,
        "name": v.item.name,
        "score": round(v.score, 4),
        "malicious": v.malicious,
        "max_severity": worst.value if worst else None,
        "findings": [finding_to_dict(f) for f in v.findings],
    }


def report_to_dict(report: ScanReport, *, only_flagged: bool = False) -> dict[str, Any]:
    """The whole report as a JSON object: a summary, the rules that ran, and one entry per item."""
    verdicts = [v for v in report.verdicts if v.findings or not only_flagged]
    counts: dict[str, int] = {}
    for f in report.findings:
        counts[f.severity.value] = counts.get(f.severity.value, 0) + 1
    return {
        "summary": {
            "items": len(report.verdicts),
            "malicious": sum(1 for v in report.verdicts if v.malicious),
            "findings": len(report.findings),
            "by_severity": counts,
        },
        "rules": [{"id": rid, "title": title} for rid, title, _ in report.rules],
        "items": [_verdict_to_dict(v) for v in verdicts],
    }


def to_json(report: ScanReport, *, only_flagged: bool = False, indent: int | None = 2) -> str:
    """The report as a JSON string."""
    return json.dumps(report_to_dict(report, only_flagged=only_flagged), indent=indent, ensure_ascii=False)
