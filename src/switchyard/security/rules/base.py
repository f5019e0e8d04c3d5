"""Building blocks for rules: the kind sets, `RuleBase` (builds findings with the rule's explanations), and
helpers to choose which fields of an item a rule reads.

Owns: nothing that detects; every rule family module imports from here. Does not own: the `Rule` Protocol
(`security.engine`), scoring, or policy.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from typing import Any

from switchyard.security.engine import SCAN_MEMO
from switchyard.security.model import Finding, ItemKind, ScanItem, Severity
from switchyard.security.text import evidence

__all__ = [
    "ALL_KINDS",
    "DEFINITION_KINDS",
    "OUTPUT_KINDS",
    "RuleBase",
    "all_fields",
    "anchor_spans",
    "contains",
    "contains_any",
    "finditer_lower",
    "lower_twin",
    "lowered",
    "name_fields",
    "prose_fields",
    "prose_matches",
    "windowed",
    "word_trie",
]

DEFINITION_KINDS: frozenset[ItemKind] = frozenset(
    {"tool", "prompt", "resource", "resource_template", "server_instructions"}
)
OUTPUT_KINDS: frozenset[ItemKind] = frozenset({"tool_output"})
ALL_KINDS: frozenset[ItemKind] = DEFINITION_KINDS | OUTPUT_KINDS

_NOT_PROSE_SUFFIXES = ("#name", ".enum", ".const", ".default", ".examples")
_NOT_PROSE_KEYS = frozenset({"name", "uri", "uriTemplate", "mimeType"})


def prose_fields(item: ScanItem) -> Iterator[tuple[str, str]]:
    """Fields written as sentences for a reader: descriptions, titles, instructions, a tool result's text."""
    for key, text in item.fields.items():
        if key in _NOT_PROSE_KEYS or key.endswith(_NOT_PROSE_SUFFIXES):
            continue
        yield key, text


def name_fields(item: ScanItem) -> Iterator[tuple[str, str]]:
    """Identifier fields: the item's name and its parameters' names."""
    for key, text in item.fields.items():
        if key == "name" or key.endswith("#name"):
            yield key, text


def word_trie(words: Iterable[str]) -> str:
    """A regex matching exactly `words`, factored by common prefixes (`send|sell` -> `se(?:nd|ll)`).

    Python's regex engine tries alternatives one by one; a factored pattern fails faster where most
    positions match none of the words, which is most of a tool result.
    """
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        ends = "" in node
        alts = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if ends else body

    return build(trie)


@lru_cache(maxsize=256)
def lowered(text: str) -> str:
    """`text.lower()`, cached: several rules look for anchors in the same text (str hashes are cached too)."""
    return text.lower()


def _finditer(regex: re.Pattern[str], text: str, pos: int = 0, endpos: int | None = None) -> Iterator[re.Match[str]]:
    return regex.finditer(text, pos, len(text) if endpos is None else endpos)


# An upper-case letter that is a literal of the pattern: not an escape (`\S`, `\B`) nor the `P` of a named
# group (`(?P<verb>`, `(?P=verb)`).
_UPPER_RE = re.compile(r"(?<!\\)(?<!\(\?)[A-Z]")


@lru_cache(maxsize=512)
def lower_twin(regex: re.Pattern[str]) -> re.Pattern[str] | None:
    """The same pattern without IGNORECASE, to run on lower-cased text (about 3x faster), or None when the
    pattern has case-sensitive parts (`(?-i:...)`, upper-case letters) and so has no such twin."""
    if not regex.flags & re.IGNORECASE or "(?-i" in regex.pattern or _UPPER_RE.search(regex.pattern):
        return None
    return re.compile(regex.pattern, regex.flags & ~re.IGNORECASE)


def finditer_lower(
    regex: re.Pattern[str], text: str, pos: int = 0, endpos: int | None = None
) -> Iterator[re.Match[str]]:
    """`regex.finditer` over `text`, run on its lower-cased copy when the pattern allows it.

    Offsets are the same (only when lower-casing keeps the length, which it does but for a few letters);
    matched strings come out lower-cased, so callers use offsets into `text`, not `group()`, for anything
    case-sensitive.
    """
    end = len(text) if endpos is None else endpos
    twin = lower_twin(regex)
    if twin is not None:
        low = lowered(text)
        if len(low) == len(text):
            return twin.finditer(low, pos, end)
    return regex.finditer(text, pos, end)


@lru_cache(maxsize=1024)
def _spaced(anchor: str) -> re.Pattern[str]:
    """An anchor whose spaces match any run of whitespace."""
    return re.compile(r"\s+".join(re.escape(part) for part in anchor.split(" ")))


# Rules look for anchors in the same lower-cased text one after another (about a hundred substrings for a
# tool result, many shared: "assistant", "you", "not "); each miss reads the whole text. Remember the answers
# for the text being scanned, in the engine's per-item scratch (`SCAN_MEMO`, emptied after each item). Keyed
# by the text's identity (`lowered` returns the same object for the same text); the answers depend only on
# (text, needle), so a race between threads at worst computes one twice.
_Memo = tuple[str, dict[str, bool], dict[str, tuple[tuple[int, int], ...]]]


def _memo(low: str) -> _Memo:
    memo: _Memo | None = SCAN_MEMO[0]
    if memo is None or memo[0] is not low:
        memo = (low, {}, {})
        SCAN_MEMO[0] = memo
    return memo


def contains(low: str, needle: str) -> bool:
    """`needle in low`, remembered while one item is scanned (see `_memo`)."""
    found = _memo(low)[1]
    hit = found.get(needle)
    if hit is None:
        hit = found[needle] = needle in low
    return hit


def contains_any(low: str, needles: Iterable[str]) -> bool:
    """`any(needle in low for needle in needles)`, each answer remembered like `contains`."""
    found = _memo(low)[1]
    for needle in needles:
        hit = found.get(needle)
        if hit is None:
            hit = found[needle] = needle in low
        if hit:
            return True
    return False


def anchor_spans(low: str, anchor: str) -> tuple[tuple[int, int], ...]:
    """Every `(start, end)` of `anchor` in `low` (overlapping ones too); a space in an anchor stands for any
    whitespace run (text wraps: "after\\n    you do that"). Remembered while one item is scanned (see `_memo`)."""
    spans_of = _memo(low)[2]
    spans = spans_of.get(anchor)
    if spans is None:
        if " " in anchor:
            words = anchor.split()
            if all(contains(low, word) for word in words):
                spans = tuple((m.start(), m.end()) for m in _spaced(anchor).finditer(low))
            else:
                spans = ()
        else:
            found: list[tuple[int, int]] = []
            i = low.find(anchor)
            while i != -1:
                found.append((i, i + len(anchor)))
                i = low.find(anchor, i + 1)
            spans = tuple(found)
        spans_of[anchor] = spans
    return spans


def windowed(
    regex: re.Pattern[str], text: str, anchors: tuple[str, ...], before: int, after: int, *, lower: bool = False
) -> Iterator[re.Match[str]]:
    """`regex.finditer(text)` restricted to windows around lower-case `anchors`, for speed on long results.

    Every match of `regex` must contain one of the anchors, start at most `before` characters before it and
    end at most `after` characters after it; then the matches are the same as a full scan. Results are
    mostly free of anchors, so most of the text is never touched by the (slower) regex.
    """
    scan = finditer_lower if lower else _finditer
    if len(text) < 256:
        yield from scan(regex, text)
        return
    low = lowered(text)
    spans: list[tuple[int, int]] = []
    known = _memo(low)[2]
    for anchor in anchors:
        found = known.get(anchor)
        for start, end in anchor_spans(low, anchor) if found is None else found:
            spans.append((max(0, start - before), min(len(text), end + after)))
    if not spans:
        return
    spans.sort()
    merged: list[tuple[int, int]] = [spans[0]]
    for lo, hi in spans[1:]:
        if lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    last_end = -1
    for lo, hi in merged:
        for m in scan(regex, text, max(lo, last_end), hi):
            last_end = m.end()
            yield m


_JOIN = "\n\n"
_Joined = tuple[list[tuple[str, str]], list[int], str]
# Rules run one after another on the same item: remember the last few joins (holding the item keeps its id
# from being reused while cached).
_JOIN_CACHE: dict[tuple[int, int], tuple[ScanItem, _Joined]] = {}


def _joined(item: ScanItem, fields: Callable[[ScanItem], Iterable[tuple[str, str]]]) -> _Joined:
    key = (id(item), id(fields))
    hit = _JOIN_CACHE.get(key)
    if hit is not None and hit[0] is item:
        return hit[1]
    pairs = list(fields(item))
    starts: list[int] = []
    pos = 0
    for _, text in pairs:
        starts.append(pos)
        pos += len(text) + len(_JOIN)
    joined = _JOIN.join(text for _, text in pairs)
    if len(_JOIN_CACHE) >= 8:
        _JOIN_CACHE.clear()
    _JOIN_CACHE[key] = (item, (pairs, starts, joined))
    return pairs, starts, joined


def all_fields(item: ScanItem) -> Iterator[tuple[str, str]]:
    """Every field of the item, names included."""
    yield from item.fields.items()


def _matches(
    regex: re.Pattern[str], text: str, anchors: tuple[str, ...] | None, before: int, after: int, *, lower: bool
) -> Iterator[re.Match[str]]:
    if anchors:
        return windowed(regex, text, anchors, before, after, lower=lower)
    return finditer_lower(regex, text) if lower else regex.finditer(text)


def prose_matches(
    item: ScanItem,
    regex: re.Pattern[str],
    anchors: tuple[str, ...] | None = None,
    before: int = 0,
    after: int = 0,
    *,
    fields: Callable[[ScanItem], Iterable[tuple[str, str]]] = prose_fields,
    lower: bool = False,
) -> Iterator[tuple[str, int, int, re.Match[str]]]:
    """Matches of `regex` in the item's prose fields as `(field, start, end, match)`, offsets in that field.

    A definition has a dozen or more short fields (one per parameter text); scanning them joined by blank
    lines costs one regex call instead of one per field, which is most of the speed on real definitions.
    With `anchors`, the scan is `windowed` (see there). A match never spans two fields' texts in practice
    (fields are joined by a blank line); if one does, it is cut at its field's end.
    """
    pairs, starts, joined = _joined(item, fields)
    if not pairs:
        return
    if len(pairs) == 1:
        key, text = pairs[0]
        found = _matches(regex, text, anchors, before, after, lower=lower)
        for m in found:
            yield key, m.start(), m.end(), m
        return
    found = _matches(regex, joined, anchors, before, after, lower=lower)
    for m in found:
        i = bisect_right(starts, m.start()) - 1
        key, text = pairs[i]
        start = m.start() - starts[i]
        yield key, start, min(len(text), m.end() - starts[i]), m


class RuleBase:
    """Shared plumbing for rules: identity, documentation, and a `finding` builder.

    Subclasses set the class attributes and implement `check(item, context)`.
    """

    id: str
    title: str
    severity: Severity
    doc: str
    why: str
    fix: str
    kinds: frozenset[ItemKind] = DEFINITION_KINDS

    def finding(
        self,
        item: ScanItem,
        field: str,
        start: int,
        end: int,
        message: str,
        *,
        severity: Severity | None = None,
        weight: float = 1.0,
        tags: tuple[str, ...] = (),
    ) -> Finding:
        """A finding of this rule on `item.fields[field][start:end]`, with the rule's why and fix."""
        text = item.fields.get(field, "")
        return Finding(
            rule_id=self.id,
            severity=severity or self.severity,
            server=item.server,
            item=item.name,
            kind=item.kind,
            field=field,
            evidence=evidence(text, start, end),
            message=message,
            why=self.why,
            fix=self.fix,
            weight=weight,
            tags=tags,
        )
