"""`switchyard keys` and `switchyard audit` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from switchyard.cli.audit import parse_since
from switchyard.cli.main import main
from switchyard.store.audit import AuditRow, SqliteAuditStore
from switchyard.store.keys import SqliteKeyStore


def test_a_created_key_is_printed_once_works_and_is_listed_without_its_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "s.db")
    assert main(["keys", "create", "ci-bot", "--group", "ops", "--note", "nightly", "--store", db]) == 0
    plaintext = capsys.readouterr().out.strip()
    assert plaintext.startswith("sy_")
    store = SqliteKeyStore(db)
    record = store.verify(plaintext)
    store.close()
    assert record is not None
    assert record.groups == ("ops",)
    assert main(["keys", "list", "--json", "--store", db]) == 0
    listed = capsys.readouterr().out
    assert plaintext.split("_", 2)[2] not in listed
    assert json.loads(listed)["principal"] == "ci-bot"
    assert main(["keys", "revoke", record.id, "--store", db]) == 0
    assert main(["keys", "revoke", record.id, "--store", db]) == 1
    store = SqliteKeyStore(db)
    assert store.verify(plaintext) is None
    store.close()


@pytest.mark.parametrize("name", ["jwt:alice", "api_key:bob", "local", "anonymous"])
def test_a_principal_name_policy_would_read_as_another_kind_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    db = tmp_path / "s.db"
    assert main(["keys", "create", name, "--store", str(db)]) != 0
    assert "would be read as another kind of caller" in capsys.readouterr().err
    store = SqliteKeyStore(str(db))
    assert store.list() == []
    store.close()


def _rows(db: Path) -> None:
    store = SqliteAuditStore(db)
    store.start()
    for i, (who, tool, when) in enumerate(
        [("alice", "a__x", 1000.0), ("bob", "a__y", 2000.0), ("alice", "b__z", 3000.0)]
    ):
        store.submit(
            AuditRow(
                event=f"e{i}", time=when, principal=who, principal_kind="api_key", client=None, era="",
                method="tools/call", server="a", tool=tool, arguments=json.dumps({"q": i}), result_bytes=10,
                is_error=False, latency_ms=1.5, decision="allowed", reason="",
            )
        )  # fmt: skip
    store.close()


def test_audit_filters_and_prints_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "a.db"
    _rows(db)
    assert main(["audit", "--db", str(db), "--principal", "alice", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["event"] for line in lines] == ["e0", "e2"]
    assert lines[0]["arguments"] == {"q": 0}
    assert main(["audit", "--db", str(db), "--since", "1500", "--tool", "a__*", "--json"]) == 0
    assert [json.loads(line)["event"] for line in capsys.readouterr().out.splitlines()] == ["e1"]


def test_audit_exports_jsonl_and_prints_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "a.db"
    _rows(db)
    out = tmp_path / "export.jsonl"
    assert main(["audit", "--db", str(db), "--export", str(out)]) == 0
    assert [json.loads(line)["event"] for line in out.read_text().splitlines()] == ["e0", "e1", "e2"]
    assert main(["audit", "--db", str(db)]) == 0
    assert "alice" in capsys.readouterr().out


def test_since_accepts_durations_iso_times_and_unix_seconds() -> None:
    assert parse_since("15m", now=10_000.0) == 10_000.0 - 900
    assert parse_since("2d", now=500_000.0) == 500_000.0 - 172_800
    assert parse_since("1700000000") == 1_700_000_000.0
    assert parse_since("2026-11-25T00:00:00Z") == 1_795_564_800.0


def test_a_bad_since_is_a_usage_error(tmp_path: Path) -> None:
    assert main(["audit", "--db", str(tmp_path / "a.db"), "--since", "yesterday"]) == 2
