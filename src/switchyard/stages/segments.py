"""The texts of a tool result, resource read or prompt, and of a request an upstream makes of the client,
located so they can be scanned at once and rewritten.

Owns: finding every scannable string of a result (text content blocks, embedded resource texts, resource
links' name, title and description, strings and keys inside `structuredContent`, resource contents' texts, a
prompt's description and message texts) and of a request for input (`collect_request`: a sampling request's
prompts, an elicitation's message and field titles); joining them into one text with known offsets, mapping
spans of that text back to segments, and building a new result with segments replaced or wrapped. Pure: no
I/O and no decision (the output guard decides, stages/guards.py).

A result is never mutated: rewriting copies only what it changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from switchyard.upstream.base import JsonObject

__all__ = [
    "PROBE_CHARS",
    "SEPARATOR",
    "Collected",
    "Segment",
    "Segments",
    "collect",
    "collect_request",
    "covered",
    "key_probes",
    "rewrite",
    "wrap_blocks",
]

SEPARATOR = "\n\n"
"""Between segments in the joined text: a paragraph break, so a sentence never runs across two segments."""

Path = tuple[str | int, ...]

_LINK_TEXTS = ("name", "title", "description")


@dataclass(frozen=True, slots=True)
class Segment:
    """One string of the result: where it is (a path of keys and indices) and its text.

    `label` is scanned before the text but is not part of it (never rewritten): for a string inside
    `structuredContent`, the key it sits under ("password: "), without which `{"password": "hunter2..."}`
    would show the scanner a bare value and no secret; a key over a non-string value is a segment of its own
    with an empty text, so instructions written into keys are scanned too.
    """

    path: Path
    text: str
    structured: bool = False
    label: str = ""


@dataclass(frozen=True, slots=True)
class Segments:
    """The segments of one result joined into one text, with each segment's start offset in it."""

    items: tuple[Segment, ...]
    joined: str
    starts: tuple[int, ...]

    @classmethod
    def of(cls, items: Sequence[Segment]) -> Segments:
        """Join `items` (each label, then its text) with `SEPARATOR`; `starts` are where the texts begin."""
        starts: list[int] = []
        pos = 0
        for seg in items:
            starts.append(pos + len(seg.label))
            pos += len(seg.label) + len(seg.text) + len(SEPARATOR)
        return cls(tuple(items), SEPARATOR.join(s.label + s.text for s in items), tuple(starts))

    def locate(self, start: int, end: int) -> list[tuple[int, int, int]]:
        """(segment index, start, end) pieces of the joined span [start, end), clipped to each segment's text
        (a span over a label alone locates nothing: a label is never rewritten)."""
        out: list[tuple[int, int, int]] = []
        for i, (seg, base) in enumerate(zip(self.items, self.starts, strict=True)):
            lo, hi = max(start, base), min(end, base + len(seg.text))
            if lo < hi:
                out.append((i, lo - base, hi - base))
        return out


def _walk(value: Any, path: Path, out: list[Segment], key: str = "") -> None:
    label = f"{key}: " if key else ""
    if isinstance(value, str):
        if value or label:
            out.append(Segment(path, value, structured=True, label=label))
    elif isinstance(value, Mapping):
        for k, v in cast(Mapping[Any, Any], value).items():
            _walk(v, (*path, str(k)), out, str(k))
    elif isinstance(value, list):
        for i, v in enumerate(cast(list[Any], value)):
            _walk(v, (*path, i), out, key)
    elif label:
        out.append(Segment(path, "", structured=True, label=label))  # a number, boolean or null: its key


Collected = tuple[list[Segment], list[Segment]]
"""What `collect` returns: (content segments, structured segments)."""


def _block_texts(block: Any, path: Path, out: list[Segment]) -> None:
    """The scannable texts of one content block at `path`: a text, an embedded resource's text, or what a
    client shows of a resource link."""
    if not isinstance(block, Mapping):
        return
    b = cast(Mapping[str, Any], block)
    if b.get("type") == "text" and isinstance(b.get("text"), str):
        out.append(Segment((*path, "text"), str(b["text"])))
    elif b.get("type") == "resource" and isinstance(res := b.get("resource"), Mapping):
        text: Any = cast(Mapping[str, Any], res).get("text")
        if isinstance(text, str):
            out.append(Segment((*path, "resource", "text"), text))
    elif b.get("type") == "resource_link":
        for field in _LINK_TEXTS:  # what a client shows of a link, and so what the model may read
            value: Any = b.get(field)
            if isinstance(value, str) and value:
                out.append(Segment((*path, field), value))


def collect(result: Mapping[str, Any], method: str) -> Collected:
    """(content segments, structured segments) of a `tools/call`, `resources/read` or `prompts/get` result."""
    content: list[Segment] = []
    structured: list[Segment] = []
    if method == "resources/read":
        for i, item in enumerate(cast(list[Any], result.get("contents") or [])):
            if isinstance(item, Mapping) and isinstance(text := cast(Mapping[str, Any], item).get("text"), str):
                content.append(Segment(("contents", i, "text"), text))
        return content, structured
    if method == "prompts/get":
        # The prompt's messages go into the conversation as they are: each message's content (one block, or a
        # list of blocks), and the description a client shows beside it.
        if isinstance(description := result.get("description"), str) and description:
            content.append(Segment(("description",), description))
        for i, message in enumerate(cast(list[Any], result.get("messages") or [])):
            body: Any = cast(Mapping[str, Any], message).get("content") if isinstance(message, Mapping) else None
            if isinstance(body, list):
                for j, block in enumerate(cast(list[Any], body)):
                    _block_texts(block, ("messages", i, "content", j), content)
            else:
                _block_texts(body, ("messages", i, "content"), content)
        return content, structured
    for i, block in enumerate(cast(list[Any], result.get("content") or [])):
        _block_texts(block, ("content", i), content)
    if "structuredContent" in result:
        _walk(result["structuredContent"], ("structuredContent",), structured)
    return content, structured


def _free_request_text(params: Mapping[str, Any], path: Path) -> bool:
    """Whether the string at `path` of an upstream's request is free text its reader sees as prose: the
    sampling `systemPrompt`, the text of a message's text block (also one inside a tool result block's
    `content`), the elicitation `message`, and a title or description in its `requestedSchema`. Decided by
    position, not by key: a `text` or `message` key inside a tool call's `input` or a tool result's
    `structuredContent` is data."""
    if path in (("systemPrompt",), ("message",)):
        return True
    if path[:1] == ("requestedSchema",):
        return path[-1] in ("title", "description")
    if len(path) < 4 or path[0] != "messages" or path[2] != "content" or path[-1] != "text":
        return False
    rest = path[3:-1]  # the block's place under the message's content: () or (j,), then maybe ("content", k)
    if rest[:1] and isinstance(rest[0], int):
        rest = rest[1:]
    if rest and not (rest[0] == "content" and (len(rest) == 1 or (len(rest) == 2 and isinstance(rest[1], int)))):
        return False
    block: Any = params
    for step in path[:-1]:
        block = block[step]  # the path came from walking `params`: every step exists
    return isinstance(block, Mapping) and cast(Mapping[str, Any], block).get("type") == "text"


def collect_request(params: Mapping[str, Any]) -> list[Segment]:
    """Every string of an upstream's `sampling/createMessage` or `elicitation/create` params, at any depth,
    each after its key (and every key over a non-string value), as `_walk` finds them in structured content.

    The free texts (`_free_request_text`) are the segments with `structured` False: only they are ever
    wrapped between markers. The rest (a tool result's structured content, a tool call's input, enum values
    and their names, defaults, URLs) have `structured` True: scanned, and redacted when they hold a secret,
    but never wrapped, so a role, a type, a field name or a URL keeps its meaning."""
    out: list[Segment] = []
    _walk(params, (), out)
    return [
        replace(seg, structured=False) if seg.text and seg.path and _free_request_text(params, seg.path) else seg
        for seg in out
    ]


def _shown_in(texts: Sequence[str]) -> Callable[[str], bool]:
    def shown(text: str) -> bool:
        escaped = json.dumps(text, ensure_ascii=False)[1:-1]
        return any(text in t or escaped in t for t in texts)

    return shown


def covered(structured: Sequence[Segment], content: Sequence[Segment]) -> bool:
    """Whether every structured string also appears in a content text (as is, or JSON-escaped), as it does when
    a server returns the same data twice (text for old clients, structured for new ones)."""
    shown = _shown_in([s.text for s in content])
    return all(shown(seg.text) for seg in structured)


PROBE_CHARS = 256
"""How much of a value is scanned with its key when the value itself is scanned in a content text."""


_WRAPPER = ("structuredContent", "result")
"""Where servers put a tool's primitive return value (the SDKs' output wrapper): the key is theirs, not data."""


def key_probes(structured: Sequence[Segment], content: Sequence[Segment]) -> list[Segment]:
    """For data returned twice (`covered`): each structured string whose key the content texts do not show,
    as its key and the first `PROBE_CHARS` of its value. The value is scanned in the content already; the
    key is not (`{"password": "..."}` beside a text that holds only the value; instructions written into
    keys), and a key's meaning reaches only so far into its value. Offsets stay valid: a probe's text is a
    prefix of the string at its path. The SDKs' `{"result": <the text>}` wrapper needs no probe."""
    texts = [s.text for s in content]
    shown = _shown_in(texts)
    whole = set(texts)
    return [
        Segment(seg.path, seg.text[:PROBE_CHARS], structured=True, label=seg.label)
        for seg in structured
        if seg.label and not (seg.path == _WRAPPER and seg.text in whole) and not shown(seg.label.removesuffix(": "))
    ]


def _set(node: Any, path: Path, fn: Callable[[str], str]) -> Any:
    """A copy of `node` with the string at `path` replaced by `fn(string)`; untouched branches are shared."""
    if not path:
        return fn(cast(str, node))
    head, rest = path[0], path[1:]
    if isinstance(node, list):
        items = list(cast(list[Any], node))
        items[cast(int, head)] = _set(items[cast(int, head)], rest, fn)
        return items
    mapping = dict(cast(Mapping[str, Any], node))
    mapping[cast(str, head)] = _set(mapping[cast(str, head)], rest, fn)
    return mapping


def rewrite(result: Mapping[str, Any], changes: Mapping[Path, Callable[[str], str]]) -> JsonObject:
    """A copy of `result` with each string at a path of `changes` replaced by the function's output."""
    out: Any = dict(result)
    for path, fn in changes.items():
        out = _set(out, path, fn)
    return cast(JsonObject, out)


def wrap_blocks(result: Mapping[str, Any], indices: set[int], prefix: str, suffix: str) -> JsonObject:
    """A copy of a tool result whose content blocks at `indices` (every block when empty) are preceded by a
    `prefix` text block and followed by a `suffix` text block; consecutive wrapped blocks share one pair."""
    blocks = cast(list[Any], result.get("content") or [])
    wanted = indices or set(range(len(blocks)))
    out: list[Any] = []
    inside = False
    for i, block in enumerate(blocks):
        if i in wanted and not inside:
            out.append({"type": "text", "text": prefix})
            inside = True
        elif i not in wanted and inside:
            out.append({"type": "text", "text": suffix})
            inside = False
        out.append(block)
    if inside or not blocks:
        if not blocks:
            out.append({"type": "text", "text": prefix})
        out.append({"type": "text", "text": suffix})
    return {**result, "content": out}
