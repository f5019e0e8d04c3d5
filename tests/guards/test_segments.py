"""Result segments: every scannable string is found, spans map back to the segment they came from, and
rewriting changes only what it must."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from switchyard.stages.segments import (
    PROBE_CHARS,
    SEPARATOR,
    Segments,
    collect,
    collect_request,
    covered,
    key_probes,
    rewrite,
    wrap_blocks,
)

RESULT: dict[str, Any] = {
    "content": [
        {"type": "text", "text": "one"},
        {"type": "image", "data": "AAAA", "mimeType": "image/png"},
        {"type": "resource", "resource": {"uri": "x://y", "text": "two"}},
    ],
    "structuredContent": {"a": ["three", {"b": "four"}], "n": 1},
}


def test_every_string_of_a_tool_result_is_collected_with_its_path() -> None:
    content, structured = collect(RESULT, "tools/call")
    assert [(s.path, s.text) for s in content] == [
        (("content", 0, "text"), "one"),
        (("content", 2, "resource", "text"), "two"),
    ]
    # Each structured string with the key it sits under as its label; a key over a number is scanned alone.
    assert [(s.label, s.text) for s in structured] == [("a: ", "three"), ("b: ", "four"), ("n: ", "")]
    assert structured[1].path == ("structuredContent", "a", 1, "b")


def test_labels_are_scanned_but_spans_map_only_into_the_texts() -> None:
    _, structured = collect({"structuredContent": {"password": "hunter2-hunter2"}}, "tools/call")
    segments = Segments.of(structured)
    assert segments.joined == "password: hunter2-hunter2"
    assert segments.starts == (len("password: "),)
    assert segments.locate(0, len(segments.joined)) == [(0, 0, len("hunter2-hunter2"))]
    assert segments.locate(0, len("password: ")) == []


def test_keys_the_texts_do_not_show_are_probed_with_the_start_of_their_value() -> None:
    value = "v" * 300
    content, structured = collect(
        {
            "content": [{"type": "text", "text": f"alice {value}"}],
            "structuredContent": {"user": "alice", "password": value},
        },
        "tools/call",
    )
    assert covered(structured, content)
    probes = key_probes(structured, content)
    assert [(p.path, p.label, p.text) for p in probes] == [
        (("structuredContent", "user"), "user: ", "alice"),
        (("structuredContent", "password"), "password: ", value[:PROBE_CHARS]),
    ]
    # A key the text shows (a JSON dump of the data) needs no probe, nor does the SDKs' primitive wrapper.
    dumped, data = collect(
        {"content": [{"type": "text", "text": '{"user": "alice"}'}], "structuredContent": {"user": "alice"}},
        "tools/call",
    )
    assert key_probes(data, dumped) == []
    text, wrapped = collect(
        {"content": [{"type": "text", "text": "ping"}], "structuredContent": {"result": "ping"}}, "tools/call"
    )
    assert key_probes(wrapped, text) == []


def test_resource_contents_are_collected() -> None:
    content, _ = collect({"contents": [{"uri": "a", "text": "hi"}, {"uri": "b", "blob": "AA=="}]}, "resources/read")
    assert [s.path for s in content] == [("contents", 0, "text")]


@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=6), st.data())
def test_a_span_of_the_joined_text_maps_back_to_the_same_characters(texts: list[str], data: st.DataObject) -> None:
    keys = data.draw(st.lists(st.text(max_size=5), min_size=len(texts), max_size=len(texts)))
    content, _ = collect({"content": [{"type": "text", "text": t} for t in texts]}, "tools/call")
    content = [dataclasses.replace(seg, label=f"{k}: " if k else "") for seg, k in zip(content, keys, strict=True)]
    segments = Segments.of(content)
    assert segments.joined == SEPARATOR.join(seg.label + seg.text for seg in content)
    start = data.draw(st.integers(0, len(segments.joined) - 1))
    end = data.draw(st.integers(start + 1, len(segments.joined)))
    pieces = segments.locate(start, end)
    rebuilt = "".join(segments.items[i].text[lo:hi] for i, lo, hi in pieces)
    inside = {base + k for seg, base in zip(segments.items, segments.starts, strict=True) for k in range(len(seg.text))}
    assert rebuilt == "".join(segments.joined[k] for k in range(start, end) if k in inside)


def test_rewrite_copies_only_the_changed_branches() -> None:
    out = rewrite(RESULT, {("structuredContent", "a", 1, "b"): str.upper})
    assert out["structuredContent"]["a"][1]["b"] == "FOUR"
    assert RESULT["structuredContent"]["a"][1]["b"] == "four"
    assert out["content"] is RESULT["content"]


def test_wrap_blocks_puts_one_marker_pair_around_consecutive_blocks() -> None:
    result = {"content": [{"type": "text", "text": t} for t in ("a", "b", "c")]}
    out = wrap_blocks(result, {0, 1}, "<", ">")
    assert [b["text"] for b in out["content"]] == ["<", "a", "b", ">", "c"]
    assert [b["text"] for b in wrap_blocks({"content": []}, set(), "<", ">")["content"]] == ["<", ">"]


def test_structured_data_repeated_in_the_text_counts_as_covered() -> None:
    content, structured = collect(
        {"content": [{"type": "text", "text": '{"a": "line\\none"}'}], "structuredContent": {"a": "line\none"}},
        "tools/call",
    )
    assert covered(structured, content)
    assert not covered(structured, [])


def test_collect_request_marks_the_free_texts_and_keeps_every_other_string_for_the_scan() -> None:
    sampling = {
        "messages": [
            {"role": "user", "content": {"type": "text", "text": "first"}},
            {"role": "assistant", "content": [{"type": "text", "text": "second"}, {"type": "image", "data": "AA=="}]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "toolUseId": "t1", "structuredContent": {"note": "hidden"}}],
            },
        ],
        "systemPrompt": "system",
        "maxTokens": 10,
        "metadata": {"note": "not shown"},
    }
    found = collect_request(sampling)
    assert [(s.path, s.text) for s in found if not s.structured] == [
        (("messages", 0, "content", "text"), "first"),
        (("messages", 1, "content", 0, "text"), "second"),
        (("systemPrompt",), "system"),
    ]
    scanned = {s.path: (s.label, s.text) for s in found if s.structured}
    assert scanned[("messages", 0, "role")] == ("role: ", "user")
    assert scanned[("messages", 2, "content", 0, "structuredContent", "note")] == ("note: ", "hidden")
    assert scanned[("metadata", "note")] == ("note: ", "not shown")
    assert scanned[("maxTokens",)] == ("maxTokens: ", "")  # a key over a number is scanned as a key
    form = {
        "mode": "form",
        "message": "Your name?",
        "requestedSchema": {
            "type": "object",
            "properties": {"name": {"type": "string", "description": "Full name", "enum": ["a", "b"]}},
        },
    }
    form_found = collect_request(form)
    assert [(s.path, s.text) for s in form_found if not s.structured] == [
        (("message",), "Your name?"),
        (("requestedSchema", "properties", "name", "description"), "Full name"),
    ]
    assert ("requestedSchema", "properties", "name", "enum", 1) in {s.path for s in form_found if s.structured}
    url = {"mode": "url", "message": "Sign in", "url": "https://example.com/x", "elicitationId": "e1"}
    url_found = collect_request(url)
    assert [s.text for s in url_found if not s.structured] == ["Sign in"]  # a URL is never wrapped
    assert "https://example.com/x" in [s.text for s in url_found if s.structured]


def test_collect_request_tells_free_text_by_its_place_not_by_its_key() -> None:
    # A tool call's input and a tool result's structured content are data even under a `text` or `message` key;
    # a text block inside a tool result's content is prose the model reads.
    sampling = {
        "messages": [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "x", "input": {"text": "in", "message": "m"}}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "toolUseId": "t1",
                        "content": [{"type": "text", "text": "shown"}],
                        "structuredContent": {"status": "ok", "message": "data", "text": "more data"},
                    }
                ],
            },
        ],
        "metadata": {"systemPrompt": "not the system prompt", "title": "t"},
    }
    free = [(s.path, s.text) for s in collect_request(sampling) if not s.structured]
    assert free == [(("messages", 1, "content", 0, "content", 0, "text"), "shown")]
    form = {"message": "Pick", "requestedSchema": {"properties": {"c": {"oneOf": [{"const": "a", "title": "A"}]}}}}
    assert [s.text for s in collect_request(form) if not s.structured] == ["Pick", "A"]


def test_collect_finds_a_prompts_description_and_every_message_text() -> None:
    prompt = {
        "description": "Triage",
        "messages": [
            {"role": "user", "content": {"type": "text", "text": "one"}},
            {"role": "user", "content": {"type": "resource", "resource": {"uri": "x://y", "text": "two"}}},
            {"role": "assistant", "content": [{"type": "image", "data": "AA=="}, {"type": "text", "text": "three"}]},
        ],
    }
    content, structured = collect(prompt, "prompts/get")
    assert structured == []
    assert [(s.path, s.text) for s in content] == [
        (("description",), "Triage"),
        (("messages", 0, "content", "text"), "one"),
        (("messages", 1, "content", "resource", "text"), "two"),
        (("messages", 2, "content", 1, "text"), "three"),
    ]
