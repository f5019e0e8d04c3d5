"""The audit log: exactly one row per request, every decision, redacted and size-capped arguments."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from governance_helpers import FakeClock, ListSink, config, governed, servers

from switchyard.errors import ConfigError, NotFound
from switchyard.identity import Principal
from switchyard.stages import build_stages
from switchyard.store.audit import AuditRow, SqliteAuditStore, storable
from switchyard.testing.harness import memory_gateway

pytestmark = pytest.mark.anyio

ALICE = Principal("alice", "api_key")


async def test_n_concurrent_calls_give_exactly_n_rows_in_the_sqlite_log(tmp_path: Path) -> None:
    settings = {"audit": {"path": str(tmp_path / "audit.db")}, "limits": {"per_principal": {"rate": 1, "burst": 150}}}
    built = build_stages(config(settings), clock=FakeClock())
    assert built.audit_store is not None
    built.audit_store.start()
    async with memory_gateway(servers(), settings=settings, stages=built.stages) as gateway:

        async def one(i: int) -> None:
            with contextlib.suppress(Exception):
                await gateway.request(
                    "tools/call", {"name": "alpha__echo", "arguments": {"text": str(i)}}, principal=ALICE
                )

        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(one, i)
    built.audit_store.close()
    rows = SqliteAuditStore(tmp_path / "audit.db").query()
    assert len(rows) == 200
    assert sorted(json.loads(r.arguments or "{}")["text"] for r in rows) == sorted(str(i) for i in range(200))
    assert [r.decision for r in rows].count("allowed") == 150
    assert [r.decision for r in rows].count("rate_limited") == 50
    assert {r.principal for r in rows} == {"alice"}


async def test_a_row_records_who_what_and_how_it_went() -> None:
    sink = ListSink()
    async with governed({}, sink=sink) as gateway:
        await gateway.request(
            "tools/call",
            {"name": "alpha__echo", "arguments": {"text": "hi"}},
            principal=ALICE,
            era="2026-07-28",
            client_info={"name": "tester", "version": "1.0", "extra": "x"},
        )
    (row,) = sink.rows
    assert (row.principal, row.principal_kind, row.method, row.server, row.tool) == (
        "alice", "api_key", "tools/call", "alpha", "alpha__echo"
    )  # fmt: skip
    assert json.loads(row.client or "") == {"name": "tester", "version": "1.0"}
    assert row.era == "2026-07-28"
    assert json.loads(row.arguments or "") == {"text": "hi"}
    assert row.decision == "allowed"
    assert row.is_error is False
    assert row.result_bytes is not None
    assert row.result_bytes > 0
    assert row.latency_ms >= 0


async def test_secrets_are_redacted_by_key_and_by_value_pattern() -> None:
    sink = ListSink()
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlX2hlcmU"
    async with governed({}, sink=sink) as gateway:
        await gateway.request(
            "tools/call",
            {"name": "beta__lookup", "arguments": {"key": f"use Bearer {jwt} now", "api_token": "hunter2"}},
            principal=ALICE,
        )
    stored = sink.rows[0].arguments or ""
    assert "hunter2" not in stored
    assert jwt not in stored
    assert json.loads(stored) == {"key": "use [REDACTED] now", "api_token": "[REDACTED]"}


async def test_credentials_in_a_resource_uri_are_redacted_in_every_column_of_the_row() -> None:
    sink = ListSink()
    uri = "https://deploy:hunter2secret@files.example.com/x"
    async with governed({}, sink=sink) as gateway:
        with pytest.raises(NotFound):
            await gateway.request("resources/read", {"uri": uri}, principal=ALICE)
    row = sink.rows[0]
    assert (row.method, row.decision) == ("resources/read", "error")
    for column in (row.tool, row.arguments, row.reason):
        assert column is not None
        assert "hunter2secret" not in column, column
    assert "files.example.com/x" in (row.tool or "")


async def test_large_arguments_are_capped() -> None:
    sink = ListSink()
    async with governed({"audit": {"max_argument_bytes": 256}}, sink=sink) as gateway:
        await gateway.request(
            "tools/call", {"name": "alpha__echo", "arguments": {"text": "y" * 10_000}}, principal=ALICE
        )
    stored: dict[str, Any] = json.loads(sink.rows[0].arguments or "")
    assert stored["$truncated"] > 10_000
    assert len(sink.rows[0].arguments or "") <= 300


async def test_a_tool_error_result_is_recorded_as_is_error() -> None:
    sink = ListSink()
    async with governed({}, sink=sink) as gateway:
        result = await gateway.request("tools/call", {"name": "beta__lookup", "arguments": {}}, principal=ALICE)
    assert result.get("isError") is True
    assert sink.rows[0].is_error is True
    assert sink.rows[0].decision == "allowed"


async def test_a_failing_audit_sink_never_breaks_a_call() -> None:
    class Broken:
        def submit(self, row: Any) -> bool:
            raise OSError("disk on fire")

    async with governed({}, sink=Broken()) as gateway:  # type: ignore[arg-type]
        result = await gateway.request("tools/call", {"name": "alpha__echo", "arguments": {"text": "ok"}})
    assert result["content"][0]["text"] == "ok"


def row(event: str, when: float, principal: str = "a", tool: str = "t") -> AuditRow:
    return AuditRow(
        event=event,
        time=when,
        principal=principal,
        principal_kind="api_key",
        client=None,
        era="",
        method="tools/call",
        server="alpha",
        tool=tool,
        arguments=None,
        result_bytes=None,
        is_error=None,
        latency_ms=0.0,
        decision="allowed",
        reason="",
    )


async def test_queries_filter_by_time_principal_and_tool(tmp_path: Path) -> None:
    store = SqliteAuditStore(tmp_path / "a.db")
    store.start()
    for i, (who, tool) in enumerate([("alice", "alpha__echo"), ("bob", "alpha__echo"), ("alice", "beta__lookup")]):
        store.submit(row(str(i), 100.0 + i, who, tool))
    assert store.flush()
    store.close()
    assert [r.event for r in store.query(principal="alice")] == ["0", "2"]
    assert [r.event for r in store.query(tool="alpha__*")] == ["0", "1"]
    assert [r.event for r in store.query(since=101.0)] == ["1", "2"]
    assert [r.event for r in store.query(limit=2)] == ["1", "2"]


async def test_a_lone_surrogate_is_stored_replaced_and_the_writer_goes_on(tmp_path: Path) -> None:
    # JSON's "\\ud800" escape survives json.loads (an unauthenticated token's key id reaches a refusal's
    # reason this way); SQLite cannot bind it as UTF-8. Before, the writer thread died on it, and every later
    # row was lost.
    store = SqliteAuditStore(tmp_path / "a.db")
    store.start()
    bad = row("bad", 100.0, tool=json.loads('"x\\ud800"'))
    bad = dataclasses.replace(bad, reason=json.loads('"key \\udfff and \\ud83d\\ude00"'))
    store.submit(bad)
    assert store.flush()
    store.submit(row("after", 101.0))
    assert store.flush()
    store.close()
    stored = {r.event: r for r in store.query()}
    assert set(stored) == {"bad", "after"}
    assert stored["bad"].tool == "x\ufffd"
    assert stored["bad"].reason == "key \ufffd and \U0001f600"
    assert store.dropped == 0


def test_storable_replaces_only_lone_surrogates() -> None:
    assert storable("plain \u00e9 \U0001f600") == "plain \u00e9 \U0001f600"
    assert storable("a\ud800b\udc00") == "a\ufffdb\ufffd"
    assert storable("\ud83d\ude00") == "\U0001f600"  # a pair written as two code points is one character


async def test_retention_prunes_rows_older_than_the_setting_when_the_log_opens(tmp_path: Path) -> None:
    now = 10 * 86400.0
    store = SqliteAuditStore(tmp_path / "a.db", clock=lambda: now)
    store.start()
    store.submit(row("old", now - 3 * 86400.0))
    store.submit(row("new", now - 3600.0))
    store.close()
    pruned = SqliteAuditStore(tmp_path / "a.db", retention_days=2, clock=lambda: now)
    pruned.start()
    pruned.close()
    assert [r.event for r in pruned.query()] == ["new"]


async def test_in_durable_mode_a_call_is_answered_only_after_its_row_is_committed(tmp_path: Path) -> None:
    settings = {"audit": {"path": str(tmp_path / "audit.db"), "durable": True}}
    built = build_stages(config(settings), clock=FakeClock())
    store = built.audit_store
    assert store is not None
    store.start()
    committed: list[int] = []
    async with memory_gateway(servers(), settings=settings, stages=built.stages) as gateway:
        for i in range(5):
            await gateway.request("tools/call", {"name": "alpha__echo", "arguments": {"text": str(i)}}, principal=ALICE)
            committed.append(store.committed)
        with pytest.raises(Exception, match="Unknown tool"):
            await gateway.request("tools/call", {"name": "alpha__nope", "arguments": {}}, principal=ALICE)
        committed.append(store.committed)
    store.close()
    assert committed == [1, 2, 3, 4, 5, 6]


async def test_rows_submitted_within_the_commit_interval_share_one_commit(tmp_path: Path) -> None:
    batches: list[list[str]] = []
    store = SqliteAuditStore(tmp_path / "a.db", linger=0.5, on_commit=lambda events: batches.append(list(events)))
    store.start()
    for i in range(5):
        store.submit(row(str(i), 100.0 + i))
        await anyio.sleep(0.02)
    gathering = store.committed
    store.close()
    assert gathering == 0  # still within the interval
    assert batches == [["0", "1", "2", "3", "4"]]


async def test_flush_and_close_do_not_wait_out_a_long_commit_interval(tmp_path: Path) -> None:
    store = SqliteAuditStore(tmp_path / "a.db", linger=30.0)
    store.start()
    store.submit(row("a", 100.0))
    started = anyio.current_time()
    assert store.flush(timeout=20.0)
    store.submit(row("b", 101.0))
    store.close(timeout=20.0)
    assert anyio.current_time() - started < 10.0
    assert [r.event for r in store.query()] == ["a", "b"]


@pytest.mark.parametrize(
    ("audit", "interval"),
    [
        ({}, 0.1),
        ({"durable": True}, 0.01),
        ({"commit_interval_ms": 250}, 0.25),
        ({"durable": True, "commit_interval_ms": 0}, 0.0),
    ],
)
def test_the_commit_interval_reaches_the_store(tmp_path: Path, audit: dict[str, Any], interval: float) -> None:
    built = build_stages(config({"audit": {"path": str(tmp_path / "audit.db"), **audit}}))
    assert built.audit_store is not None
    assert built.audit_store.linger == pytest.approx(interval)


async def test_flush_is_not_held_per_batch_behind_a_backlog(tmp_path: Path) -> None:
    store = SqliteAuditStore(tmp_path / "a.db", linger=30.0, batch_size=10)
    store.start()
    for i in range(45):
        store.submit(row(str(i), 100.0 + i))
    started = anyio.current_time()
    assert store.flush(timeout=20.0)
    assert anyio.current_time() - started < 10.0
    store.close()
    assert len(store.query()) == 45


def test_a_durable_commit_interval_is_bounded(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at most 1000 ms"):
        config({"audit": {"durable": True, "commit_interval_ms": 6000}})
    assert config({"audit": {"commit_interval_ms": 6000}}).switchyard.audit.commit_interval == 6.0
