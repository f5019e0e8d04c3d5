"""The approvals table: ids bind caller, tool and arguments; pending requests, decisions and their expiry;
shared between processes through the SQLite file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from switchyard.approvals import CallApproval, SqliteApprovalStore, approval_id
from switchyard.cli.main import main
from switchyard.errors import NotFound


def pending(ident: str, now: float, ttl: float = 100.0) -> CallApproval:
    return CallApproval(ident, "alice", "web", "web__post", '{"body":"x"}', "why", now, now + ttl, "pending")


def test_the_id_binds_caller_tool_and_arguments() -> None:
    base = approval_id("alice", "web", "web__post", {"a": 1, "b": [1, 2]})
    assert base == approval_id("alice", "web", "web__post", {"b": [1, 2], "a": 1})  # key order does not matter
    assert base != approval_id("bob", "web", "web__post", {"a": 1, "b": [1, 2]})
    assert base != approval_id("alice", "web", "web__get", {"a": 1, "b": [1, 2]})
    assert base != approval_id("alice", "web", "web__post", {"a": 2, "b": [1, 2]})
    # The same federated name on another server (names move when collisions resolve anew) is another call.
    assert base != approval_id("alice", "mirror", "web__post", {"a": 1, "b": [1, 2]})


def test_a_request_is_kept_until_decided_and_a_decision_holds_until_it_expires(tmp_path: Path) -> None:
    store = SqliteApprovalStore(tmp_path / "s.db")
    other = SqliteApprovalStore(tmp_path / "s.db")  # another process, in effect
    try:
        store.request(pending("a1", 0.0), 0.0)
        assert [a.id for a in other.listing(1.0)] == ["a1"]
        decided = other.decide("a1", True, now=10.0, ttl=50.0, by="cli:test")
        assert (decided.status, decided.expires, decided.decided_by) == ("approved", 60.0, "cli:test")
        again = store.request(pending("a1", 20.0), 20.0)  # a retry keeps the decision
        assert again.status == "approved"
        assert store.listing(20.0) == []
        assert [a.id for a in store.listing(20.0, everything=True)] == ["a1"]
        assert store.request(pending("a1", 61.0), 61.0).status == "pending"  # expired: asked afresh
    finally:
        store.close()
        other.close()


def test_deciding_an_unknown_or_expired_call_fails(tmp_path: Path) -> None:
    store = SqliteApprovalStore(tmp_path / "s.db")
    try:
        with pytest.raises(NotFound):
            store.decide("nope", True, now=0.0, ttl=1.0, by="x")
        store.request(pending("old", 0.0, ttl=5.0), 0.0)
        with pytest.raises(NotFound):
            store.decide("old", True, now=6.0, ttl=1.0, by="x")
    finally:
        store.close()


@pytest.mark.parametrize("ttl", ["0", "-10", "nan", "2592001", "soon"])
def test_approve_call_refuses_a_ttl_outside_the_configured_bounds_and_keeps_the_pending_call(
    tmp_path: Path, ttl: str
) -> None:
    db = tmp_path / "s.db"
    store = SqliteApprovalStore(db)
    now = time.time()
    try:
        store.request(pending("abcd", now), now)
    finally:
        store.close()
    with pytest.raises(SystemExit) as info:
        main(["approve-call", "abcd", "--ttl", ttl, "--store", str(db)])
    assert info.value.code == 2  # a usage error: nothing was decided
    assert main(["approve-call", "abcd", "--ttl", "60", "--store", str(db)]) == 0  # still pending, so decidable
