"""SARIF 2.1.0 report: one run, the enabled rules as `reportingDescriptor`s, one `result` per finding.

Owns: the mapping from findings to SARIF (levels, logical locations `server/item#field`, fingerprints,
GitHub's `security-severity`). Does not own: schema validation (tests validate against the OASIS schema).
Items come from servers, not files, so locations are logical; with `artifact_uri` (a scanned file) results
also carry a physical location naming that file.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from switchyard.security.model import Finding, ScanReport, Severity

__all__ = ["SARIF_SCHEMA_URI", "to_sarif", "to_sarif_dict"]

SARIF_SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub code scanning reads this property (0.1-10) to rank security results.
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "1.0",
}


def _tool_version() -> str:
    try:
        return version("mcp-switchyard")
    except PackageNotFoundError:
        return "0.0.0"


def _fingerprint(f: Finding) -> str:
    key = "\x1f".join((f.rule_id, f.server, f.kind, f.item, f.field, f.evidence.excerpt))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _result(f: Finding, rule_index: int, artifact_uri: str | None) -> dict[str, Any]:
    location: dict[str, Any] = {
        "logicalLocations": [
            {
                "name": f.item,
                "fullyQualifiedName": f"{f.server}/{f.item}#{f.field}",
                "kind": "member",
            }
        ],
        "message": {"text": f"{f.field}, characters {f.evidence.start}-{f.evidence.end}"},
    }
    if artifact_uri:
        location["physicalLocation"] = {"artifactLocation": {"uri": artifact_uri}}
    result: dict[str, Any] = {
        "ruleId": f.rule_id,
        "level": _LEVEL[f.severity],
        "message": {
            "text": f"{f.message} in {f.kind} '{f.item}' of server '{f.server}' ({f.field}): {f.evidence.excerpt}"
        },
        "locations": [location],
        "partialFingerprints": {"switchyardFinding/v1": _fingerprint(f)},
        "properties": {
            "severity": f.severity.value,
            "security-severity": _SECURITY_SEVERITY[f.severity],
            "server": f.server,
            "itemKind": f.kind,
            "field": f.field,
            "evidence": {"excerpt": f.evidence.excerpt, "start": f.evidence.start, "end": f.evidence.end},
            "score": round(f.score, 4),
            "why": f.why,
            "fix": f.fix,
        },
    }
    if rule_index >= 0:
        result["ruleIndex"] = rule_index
    return result


def to_sarif_dict(report: ScanReport, *, artifact_uri: str | None = None) -> dict[str, Any]:
    """The report as a SARIF 2.1.0 log (a JSON object)."""
    rule_ids = [rid for rid, _, _ in report.rules]
    extra = sorted({f.rule_id for f in report.findings} - set(rule_ids))
    descriptors: list[dict[str, Any]] = [
        {
            "id": rid,
            "name": "".join(w.capitalize() for w in title.replace("-", " ").split() if w.isalnum()) or rid,
            "shortDescription": {"text": title},
            "fullDescription": {"text": doc},
            "help": {"text": doc},
            "properties": {"tags": ["security", "mcp"]},
        }
        for rid, title, doc in report.rules
    ] + [{"id": rid, "shortDescription": {"text": rid}} for rid in extra]
    index = {d["id"]: i for i, d in enumerate(descriptors)}
    results = [_result(f, index.get(f.rule_id, -1), artifact_uri) for f in report.findings]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "switchyard-scan",
                "fullName": "Switchyard MCP threat scanner",
                "version": _tool_version(),
                "rules": descriptors,
            }
        },
        "results": results,
        "columnKind": "unicodeCodePoints",
    }
    if artifact_uri:
        run["artifacts"] = [{"location": {"uri": artifact_uri}}]
    return {"$schema": SARIF_SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def to_sarif(report: ScanReport, *, artifact_uri: str | None = None, indent: int | None = 2) -> str:
    """The report as a SARIF 2.1.0 JSON string."""
    return json.dumps(to_sarif_dict(report, artifact_uri=artifact_uri), indent=indent, ensure_ascii=False)
