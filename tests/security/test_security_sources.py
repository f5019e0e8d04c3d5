"""Offline sources: tools/list dumps, bare lists, JSON-RPC envelopes and labelled JSONL corpora."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from switchyard.security import items_from_definitions, items_from_file, load_corpus

DUMP = {
    "tools": [
        {
            "name": "echo",
            "description": "Echoes text.",
            "inputSchema": {"type": "object", "properties": {"text": {"type": "string", "description": "What"}}},
            "annotations": {"title": "Echo"},
        }
    ],
    "prompts": [{"name": "greet", "description": "Greets.", "arguments": [{"name": "who", "description": "Name"}]}],
    "resources": [{"uri": "file:///notes.txt", "name": "notes", "description": "Notes."}],
    "resourceTemplates": [{"uriTemplate": "file:///{path}", "name": "files"}],
    "instructions": "Use echo for testing.",
}


def test_a_full_dump_yields_every_kind_with_flattened_fields() -> None:
    items = items_from_definitions(DUMP, server="demo")
    kinds = [i.kind for i in items]
    assert kinds == ["tool", "prompt", "resource", "resource_template", "server_instructions"]
    echo = items[0]
    assert echo.fields["inputSchema.properties.text.description"] == "What"
    assert echo.fields["inputSchema.properties.text#name"] == "text"
    assert echo.fields["annotations.title"] == "Echo"
    assert items[1].fields["arguments[0]#name"] == "who"
    assert all(i.server == "demo" for i in items)


def test_a_bare_list_and_a_json_rpc_envelope_are_accepted(tmp_path: Path) -> None:
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(DUMP["tools"]))
    assert [i.name for i in items_from_file(bare)] == ["echo"]
    assert items_from_file(bare)[0].server == "bare"
    wrapped = tmp_path / "rpc.json"
    wrapped.write_text(json.dumps({"jsonrpc": "2.0", "id": 1, "result": DUMP}))
    assert len(items_from_file(wrapped, server="x")) == 5


def test_something_else_is_refused() -> None:
    with pytest.raises(ValueError, match="tools/list"):
        items_from_definitions("nope")


def test_a_labelled_jsonl_corpus_keeps_labels_and_kinds(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    rows = [
        {
            "id": "a",
            "server": "s",
            "name": "t",
            "description": "d",
            "input_schema": {"type": "object"},
            "label": "malicious",
            "category": "x",
            "source": "me",
        },
        {"id": "b", "text": "hello", "label": "benign"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    corpus = load_corpus(path)
    assert [c.item.kind for c in corpus] == ["tool", "tool_output"]
    assert corpus[0].positive
    assert not corpus[1].positive
    assert corpus[0].item.fields["description"] == "d"
    assert [i.kind for i in items_from_file(path)] == ["tool", "tool_output"]
