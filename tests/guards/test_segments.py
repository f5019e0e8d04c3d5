"""Result segments: every scannable string is found, spans map back to the segment they came from, and
rewriting changes only what it must."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from switchyard.stages.segments import SEPARATOR, Segments, collect, covered, rewrite, wrap_blocks

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
    assert [s.text for s in structured] == ["three", "four"]
    assert structured[1].path == ("structuredContent", "a", 1, "b")


def test_resource_contents_are_collected() -> None:
    content, _ = collect({"contents": [{"uri": "a", "text": "hi"}, {"uri": "b", "blob": "AA=="}]}, "resources/read")
    assert [s.path for s in content] == [("contents", 0, "text")]


@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=6), st.data())
def test_a_span_of_the_joined_text_maps_back_to_the_same_characters(texts: list[str], data: st.DataObject) -> None:
    content, _ = collect({"content": [{"type": "text", "text": t} for t in texts]}, "tools/call")
    segments = Segments.of(content)
    assert segments.joined == SEPARATOR.join(texts)
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
