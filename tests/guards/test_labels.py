"""Flow labels: generic heuristics on tool definitions (verbs, objects, parameter names, annotations), labels
from configuration, URI labels, and the conversation tracker's window and bound."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from switchyard.security.flows import FlowTracker, config_labels, label_definition, label_uri

REAL_SERVERS = Path(__file__).resolve().parents[1] / "security" / "real_servers"


def tool(name: str, description: str = "", *params: str, **annotations: Any) -> dict[str, Any]:
    schema = {"type": "object", "properties": {p: {"type": "string"} for p in params}}
    out: dict[str, Any] = {"name": name, "description": description, "inputSchema": schema}
    if annotations:
        out["annotations"] = annotations
    return out


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        (tool("send_email", "Send an email.", "to", "subject", "body"), {"egress"}),
        (tool("slack_post_message", "Post a message to a channel.", "channel_id", "text"), {"egress"}),
        (tool("fetch", "Fetches a URL from the internet.", "url"), {"egress", "untrusted"}),
        (tool("brave_web_search", "Search the web.", "query"), {"untrusted"}),
        (tool("create_issue", "Create a new issue.", "owner", "repo", "title", "body"), {"egress"}),
        (tool("list_issues", "List issues in a repository.", "owner", "repo"), {"private", "untrusted"}),
        (tool("query", "Run a read-only SQL query.", "sql"), {"private"}),
        (tool("getWeather", "Get the weather for a city.", "city"), set()),
        (tool("get_inbox", "Read the user's mailbox.", "folder"), {"private", "untrusted"}),
        (tool("write_file", "Write content to a file.", "path", "content"), {"egress"}),
        (tool("create_directory", "Create a directory.", "path"), set()),
        (tool("lookup", "Looks up a record in the customer database.", "id"), {"private"}),
        (tool("browse", "Navigate a page.", readOnlyHint=True, openWorldHint=True), {"untrusted"}),
        (tool("act", "Do something.", readOnlyHint=False, openWorldHint=True), {"egress"}),
    ],
)
def test_generic_definitions_get_the_labels_their_verbs_and_parameters_imply(
    definition: dict[str, Any], expected: set[str]
) -> None:
    labelled = label_definition(definition)
    assert set(labelled.labels) == expected
    for label in expected:
        assert labelled.explain(label)  # every label says why  # type: ignore[arg-type]


def test_real_servers_are_labelled_plausibly() -> None:
    found: dict[str, set[str]] = {}
    for path in sorted(REAL_SERVERS.glob("*.json")):
        for definition in json.loads(path.read_text())["tools"]:
            found[definition["name"]] = set(label_definition(definition).labels)
    assert found["read_file"] == {"private"}
    assert found["write_file"] == {"egress"}
    assert found["get_current_time"] == set()
    assert found["echo"] == set()
    assert "egress" not in found["git_log"]


def test_configuration_replaces_the_heuristics_for_the_names_it_matches() -> None:
    configured = {"post_*": ("egress",), "read_*": ()}
    assert config_labels(configured, "post_note") is not None
    assert set(config_labels(configured, "read_mail").labels) == set()  # type: ignore[union-attr]
    assert config_labels(configured, "other") is None
    assert set(config_labels(("private",), "anything").labels) == {"private"}  # type: ignore[union-attr]
    assert config_labels(None, "x") is None


def test_uris_are_labelled_by_scheme() -> None:
    assert set(label_uri("file:///etc/passwd").labels) == {"private"}
    assert set(label_uri("https://example.org/page").labels) == {"untrusted"}
    assert not label_uri("memo://notes").labels


def test_a_conversation_is_forgotten_after_the_window_and_the_oldest_beyond_the_limit() -> None:
    now = [0.0]
    tracker = FlowTracker(window=60.0, limit=10, clock=lambda: now[0])
    tracker.record("a", ["private", "egress"], "files__read")
    assert set(tracker.get("a").seen) == {"private"}  # egress is what a call does, not what it brings in
    now[0] = 59.0
    assert tracker.get("a").seen
    now[0] = 200.0
    assert not tracker.get("a").seen
    for i in range(25):
        tracker.record(f"k{i}", ["untrusted"], "web")
    assert len(tracker) == 10


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        (tool("start_process", "Start a new terminal process.", "command"), {"egress", "private"}),
        (tool("run_python", "Execute Python code.", "code"), {"egress", "private"}),
        (tool("get_route", "Stations between two cities.", "from_station", "to_station"), set()),
        (tool("notify", "Notify someone.", "to_email", "text"), {"egress"}),
    ],
)
def test_code_execution_and_destination_parameters(definition: dict[str, Any], expected: set[str]) -> None:
    assert set(label_definition(definition).labels) == expected
