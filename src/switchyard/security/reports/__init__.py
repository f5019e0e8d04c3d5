"""Scan reports in three formats: text (rich, for people), JSON (for programs) and SARIF 2.1.0 (for CI).

Owns: turning a `ScanReport` into output. Does not own: scanning, exit codes or `--fail-on` (the CLI decides
those with `ScanReport.at_least`).
"""

from __future__ import annotations

from switchyard.security.reports.json import report_to_dict, to_json
from switchyard.security.reports.sarif import SARIF_SCHEMA_URI, to_sarif, to_sarif_dict
from switchyard.security.reports.text import to_text

__all__ = ["SARIF_SCHEMA_URI", "report_to_dict", "to_json", "to_sarif", "to_sarif_dict", "to_text"]
