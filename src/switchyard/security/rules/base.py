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
from typing import Any, TypeVar, cast

from switchyard.security.anchors import MIN_TEXT, TextAnchors, spaced
from switchyard.security.engine import SCAN_MEMO
from switchyard.security.gate import TextGate
from switchyard.security.model import Finding, ItemKind, ScanItem, Severity
from switchyard.security.prefilter import Prefilter
from switchyard.security.text import evidence

__all__ = [
    "ALL_KINDS",
    "DEFINITION_KINDS",
    "OUTPUT_KINDS",
    "RuleBase",
    "all_fields",
    "anchor_spans",
    "anchored",
    "anchors_absent",
    "contains",
    "contains_any",
    "finditer_lower",
    "lower_twin",
    "lowered",
    "may_match",
    "name_fields",
    "prose_fields",
    "prose_matches",
    "twin_of",
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


# The only non-ASCII characters IGNORECASE matches as ASCII letters: U+0130 (the one character whose
# `lower()` is two characters long), U+0131, U+017F and U+212A.
_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


@lru_cache(maxsize=256)
def lowered(text: str) -> str:
    """`text.lower()` after folding the four non-ASCII letters IGNORECASE reads as `i`, `s` or `k` into those
    letters, cached (several rules look for anchors in the same text; str hashes are cached too).

    Always the length of `text`, so offsets found in it are offsets in `text` (a plain `lower()` turns U+0130
    into two characters: a run of them shifted every window away from its anchor). And a lower-case twin run on
    it matches wherever the IGNORECASE pattern matches `text`: `ſystem`, `ıgnore` and `\u212aey` read as
    `system`, `ignore` and `key`, as IGNORECASE and a model read them."""
    if text.isascii():
        return text.lower()
    return text.translate(_FOLD).lower()


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


def twin_of(regex: re.Pattern[str]) -> re.Pattern[str]:
    """`lower_twin(regex)` for a pattern that must have one (a rule's pattern run on lower-cased text)."""
    twin = lower_twin(regex)
    if twin is None:
        raise ValueError(f"no lower-case twin (case-sensitive parts?): {regex.pattern[:80]!r}")
    return twin


# `lower_twin` by the pattern's identity: hashing a compiled pattern (what lru_cache does) hashes its whole
# compiled code, kilobytes for the big rule patterns, on every call. Holding the pattern keeps its id.
_TWINS: dict[int, tuple[re.Pattern[str], re.Pattern[str] | None]] = {}


def _cached_twin(regex: re.Pattern[str]) -> re.Pattern[str] | None:
    hit = _TWINS.get(id(regex))
    if hit is not None and hit[0] is regex:
        return hit[1]
    twin = lower_twin(regex)
    if len(_TWINS) >= 512:
        _TWINS.clear()
    _TWINS[id(regex)] = (regex, twin)
    return twin


def finditer_lower(
    regex: re.Pattern[str], text: str, pos: int = 0, endpos: int | None = None
) -> Iterator[re.Match[str]]:
    """`regex.finditer` over `text`, run on its lower-cased copy when the pattern allows it.

    Offsets are the same (`lowered` keeps the length); matched strings come out lower-cased, so callers use
    offsets into `text`, not `group()`, for anything case-sensitive.
    """
    end = len(text) if endpos is None else endpos
    twin = _cached_twin(regex)
    if twin is not None:
        low = lowered(text)
        if len(low) == len(text):
            return twin.finditer(low, pos, end)
    return regex.finditer(text, pos, end)


# Rules look for anchors in the same lower-cased text one after another (about a hundred and fifty
# substrings for a tool result, many shared: "assistant", "you", "not "). `security.anchors` answers them all
# from one RE2 set pass per text; the answers for the texts of the item being scanned are kept in the
# engine's per-item, per-thread scratch (`SCAN_MEMO`, emptied after each item), keyed by the text's identity
# (`lowered` returns the same object for the same text).
_MAX_TEXTS = 32  # texts' answers of both kinds
_WHOLE_SCAN = 256
"""`windowed` scans a text shorter than this whole: finding the windows would cost more than the scan."""


_PerText = TypeVar("_PerText", TextAnchors, TextGate)


def _per_text(kind: type[_PerText], text: str) -> _PerText:
    """The item's `kind` answers for `text` (`TextAnchors` of a lower-cased text, `TextGate` of a text), built on
    first use and kept in the engine's per-item scratch (`SCAN_MEMO`) by the text's identity."""
    memos: dict[tuple[type[Any], int], Any] | None = SCAN_MEMO.value
    if memos is None:
        memos = SCAN_MEMO.value = {}
    key = (kind, id(text))
    memo = memos.get(key)
    if memo is None or memo.text is not text:
        if len(memos) >= _MAX_TEXTS:
            memos.clear()
        memo = memos[key] = kind(text)
    return cast(_PerText, memo)


def _memo(low: str) -> TextAnchors:
    return _per_text(TextAnchors, low)


def may_match(regex: re.Pattern[str], text: str) -> bool:
    """False when `regex` is sure to have no match in `text` (`security.gate`: one RE2 set pass per text, kept
    in the item's scratch like the anchors). A text shorter than `windowed`'s whole-scan limit is not asked
    about (True): a set pass would cost what the scan does."""
    if len(text) < _WHOLE_SCAN:
        return True
    return _per_text(TextGate, text).may_match(regex)


def contains(low: str, needle: str) -> bool:
    """`needle in low`, answered from the item's anchor search (see `_memo`); asked directly of a short text."""
    if len(low) < MIN_TEXT:
        return needle in low
    return _memo(low).contains(needle)


def contains_any(low: str, needles: Iterable[str]) -> bool:
    """`any(needle in low for needle in needles)`, answered like `contains`."""
    if len(low) < MIN_TEXT:
        return any(needle in low for needle in needles)
    return _memo(low).contains_any(needles)


def anchor_spans(low: str, anchor: str) -> tuple[tuple[int, int], ...]:
    """Every `(start, end)` of `anchor` in `low` (overlapping ones too); a space in an anchor stands for any
    whitespace run (text wraps: "after\\n    you do that"). Answered from the item's anchor search (see `_memo`)."""
    return _memo(low).spans(anchor)


def anchors_absent(text: str, anchors: Iterable[str]) -> bool:
    """True when a short text is sure to hold no match of a pattern whose every match contains one of the
    lower-case `anchors` (`windowed`'s contract): a rule skips the scan `windowed` would run on it whole.

    Only a text shorter than `windowed`'s whole-scan limit is judged (a long one is windowed, which already
    touches nothing without anchors), and only an ASCII one, where lower-casing and IGNORECASE agree letter for
    letter (IGNORECASE matches `ſ`, `ı` and the Kelvin sign as `s`, `i`, `k`, which `lower()` keeps). A space
    in an anchor stands for any whitespace run, as in `windowed`. Conservative: False unless it is sure.
    """
    if len(text) >= _WHOLE_SCAN or not text.isascii():
        return False
    return _any_anchor(tuple(anchors)).search(lowered(text)) is None


@lru_cache(maxsize=256)
def _any_anchor(anchors: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern for "one of `anchors` occurs" (a space: any whitespace run): a single call on a short text."""
    return re.compile("|".join(spaced(anchor).pattern for anchor in anchors) or "(?!)")


def anchored(regex: re.Pattern[str], text: str, anchors: Iterable[str], offset: int = 0) -> Iterator[re.Match[str]]:
    """`regex.finditer(text)` for a pattern whose every match starts `offset` characters before one of the
    lower-case `anchors` (a literal prefix: `ghp_`, `sk-`, `AIza`), tried only at those places.

    Exact on ASCII text, where a match's characters lower-case one by one to the anchor's (the anchors come
    from the item's anchor search, see `_memo`); other text is scanned whole. Each try is `regex.match` at a
    candidate start, which sees the same string as a scan does (lookbehinds and `\\b` read what is before);
    candidates inside the previous match are skipped, as a scan does.
    """
    if not text.isascii():
        yield from regex.finditer(text)
        return
    memo = _memo(lowered(text))
    starts = sorted({start - offset for anchor in anchors for start, _ in memo.spans(anchor) if start >= offset})
    last_end = 0
    for start in starts:
        if start < last_end:
            continue
        m = regex.match(text, start)
        if m is not None:
            last_end = m.end()
            yield m


def windowed(
    regex: re.Pattern[str],
    text: str,
    anchors: tuple[str, ...],
    before: int,
    after: int,
    *,
    lower: bool = False,
    prefilter: Prefilter | None = None,
) -> Iterator[re.Match[str]]:
    """`regex.finditer(text)` restricted to windows around lower-case `anchors`, for speed on long results.

    Every match of `regex` must contain one of the anchors, start at most `before` characters before it and
    end at most `after` characters after it; then the matches are the same as a full scan. Results are
    mostly free of anchors, so most of the text is never touched by the (slower) regex. With a `prefilter`
    (whose `regex` is `regex`, or its lower-case twin when `lower`), the windows are searched only where
    RE2 says a match can start (`security.prefilter`): the same matches again.
    """
    scan = finditer_lower if lower else _finditer
    if len(text) < _WHOLE_SCAN:
        yield from scan(regex, text)
        return
    if not may_match(regex, text):
        return  # no match anywhere in the text, so none in its windows
    low = lowered(text)
    spans: list[tuple[int, int]] = []
    memo = _memo(low)
    size = len(text)
    for anchor in anchors:
        for start, end in memo.spans(anchor):
            spans.append((max(0, start - before), min(size, end + after)))
    if not spans:
        return
    spans.sort()
    merged: list[tuple[int, int]] = [spans[0]]
    for lo, hi in spans[1:]:
        if lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    if prefilter is not None and len(low) == len(text):
        yield from prefilter.finditer(low if lower else text, merged, low=low)
        return
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
    regex: re.Pattern[str],
    text: str,
    anchors: tuple[str, ...] | None,
    before: int,
    after: int,
    *,
    lower: bool,
    prefilter: Prefilter | None,
) -> Iterator[re.Match[str]]:
    if anchors:
        return windowed(regex, text, anchors, before, after, lower=lower, prefilter=prefilter)
    if not may_match(regex, text):
        return iter(())
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
    prefilter: Prefilter | None = None,
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
        if anchors and anchors_absent(text, anchors):
            return  # a short result without the anchors: skip the whole scan `windowed` would run for nothing
        found = _matches(regex, text, anchors, before, after, lower=lower, prefilter=prefilter)
        for m in found:
            yield key, m.start(), m.end(), m
        return
    found = _matches(regex, joined, anchors, before, after, lower=lower, prefilter=prefilter)
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
