"""The reference servers of issue 4 (time, git, everything, filesystem, memory): no high-severity finding.

The dumps in real_servers/ were listed from the real servers by dump_real_servers.py (run by hand).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from switchyard.security import Scanner, Severity, items_from_file

DUMPS = sorted((Path(__file__).parent / "real_servers").glob("*.json"))


def test_all_five_reference_servers_are_present() -> None:
    assert {p.stem for p in DUMPS} == {
        "mcp-server-time",
        "mcp-server-git",
        "server-everything",
        "server-filesystem",
        "server-memory",
    }


@pytest.mark.parametrize("dump", DUMPS, ids=lambda p: p.stem)
def test_a_real_server_has_no_high_severity_finding_and_nothing_malicious(dump: Path) -> None:
    report = Scanner().scan(items_from_file(dump))
    assert report.verdicts
    high = report.at_least(Severity.HIGH)
    assert not high, [(f.item, f.rule_id, f.message) for f in high]
    assert not any(v.malicious for v in report.verdicts)


def test_all_reference_servers_together_have_no_high_cross_server_finding() -> None:
    items = [item for dump in DUMPS for item in items_from_file(dump)]
    assert not Scanner().scan(items).at_least(Severity.HIGH)
