"""Anchor search for the rules: every anchor substring of one lower-cased text found in a single pass.

Rules look for a hundred or more short anchors ("assistant", "you", "sk-", "private key") in the same text
before running their regexes near them (`rules.base.contains`, `anchor_spans`, `windowed`). One `str.find`
per anchor reads the whole text each time an anchor is missing, which most are; an Aho-Corasick automaton
(`pyahocorasick`, C) finds all of them, overlapping occurrences included, in one pass.

Which anchors exist is learned, not declared: an anchor asked of a text but not yet in the automaton is
answered with `str.find` as before and recorded; the automaton is rebuilt with it before the next text
(`register` adds anchors up front). So any anchor works at any time, answers never depend on what was
learned, and after the first few scans every rule's anchors are in one automaton.

Owns: the anchor registry and its automaton, `TextAnchors` (the answers for one text) and `spaced` (an
anchor's spaces match any whitespace run). Does not own: which anchors a rule uses, the regexes run near
them, or when a scan starts and ends (the engine's per-item scratch `SCAN_MEMO` holds the `TextAnchors`).

Thread-safe: the automaton is never changed once built (a rebuild makes a new one, swapped in under a
lock), and a `TextAnchors` belongs to the scan of one item on one thread.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Protocol, cast

import ahocorasick  # pyright: ignore[reportMissingTypeStubs]

__all__ = ["MIN_TEXT", "AnchorRegistry", "TextAnchors", "default_registry", "register", "spaced"]

MIN_TEXT = 128
"""Texts shorter than this are searched with `str.find` (an automaton pass costs as much as ~25 finds)."""

_MAX_ANCHORS = 4096  # anchors past this many are always answered with str.find (a registry never grows unbounded)
_MAX_ANCHOR_LEN = 256


class _Automaton(Protocol):
    def add_word(self, key: str, value: object, /) -> bool: ...
    def make_automaton(self) -> None: ...
    def iter(self, string: str, /) -> Iterator[tuple[int, str]]: ...


def _build(words: Iterable[str]) -> _Automaton:
    automaton = cast(_Automaton, ahocorasick.Automaton())  # pyright: ignore[reportUnknownMemberType]
    for word in words:
        automaton.add_word(word, word)
    automaton.make_automaton()
    return automaton


class AnchorRegistry:
    """The anchors known so far and one automaton over them (rebuilt, not changed, when anchors are added)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: tuple[_Automaton | None, frozenset[str]] = (None, frozenset())
        self._pending: set[str] = set()

    @property
    def anchors(self) -> frozenset[str]:
        """The anchors in the current automaton (pending ones are added at the next `snapshot`)."""
        return self._state[1]

    def learn(self, anchor: str) -> None:
        """Remember `anchor` for the next automaton (ignored when empty, too long, or the registry is full)."""
        words = self._state[1]
        if (
            anchor
            and anchor not in words
            and len(anchor) <= _MAX_ANCHOR_LEN
            and len(words) + len(self._pending) < _MAX_ANCHORS
        ):
            self._pending.add(anchor)

    def register(self, anchors: Iterable[str]) -> None:
        """Add anchors up front (the next `snapshot` builds the automaton with them)."""
        for anchor in anchors:
            self.learn(anchor)

    def snapshot(self) -> tuple[_Automaton | None, frozenset[str]]:
        """The current automaton and its anchors, rebuilt first if anchors were learned since."""
        if self._pending:
            with self._lock:
                if self._pending:
                    new = set(self._pending)  # one C call: atomic under the GIL, as is the update below
                    words = self._state[1] | new
                    self._state = (_build(sorted(words)), words)
                    self._pending.difference_update(new)
        return self._state


_DEFAULT = AnchorRegistry()


def default_registry() -> AnchorRegistry:
    """The process-wide registry the rules share."""
    return _DEFAULT


def register(anchors: Iterable[str]) -> None:
    """Add anchors to the shared registry up front (optional: unknown anchors are learned on first use)."""
    _DEFAULT.register(anchors)


@lru_cache(maxsize=1024)
def spaced(anchor: str) -> re.Pattern[str]:
    """An anchor whose spaces match any run of whitespace."""
    return re.compile(r"\s+".join(re.escape(part) for part in anchor.split(" ")))


Spans = tuple[tuple[int, int], ...]


class TextAnchors:
    """Answers about anchors in one lower-cased text: `contains` and `spans`, exact whatever was registered.

    Built on first use for a text: one automaton pass records where every registered anchor ends. An anchor
    the automaton does not have is looked up with `str.find` (and learned for the next texts).
    """

    __slots__ = ("_ends", "_found", "_registry", "_spans", "_words", "text")

    def __init__(self, text: str, registry: AnchorRegistry | None = None) -> None:
        self.text = text
        self._registry = registry or _DEFAULT
        self._found: dict[str, bool] = {}
        self._spans: dict[str, Spans] = {}
        self._ends: dict[str, list[int]] = {}
        self._words: frozenset[str] = frozenset()
        if len(text) >= MIN_TEXT:
            automaton, words = self._registry.snapshot()
            if automaton is not None:
                ends = self._ends
                for end, word in automaton.iter(text):
                    at = ends.get(word)
                    if at is None:
                        ends[word] = [end]
                    else:
                        at.append(end)
                self._words = words

    def _miss(self, needle: str) -> bool:
        hit = self._found.get(needle)
        if hit is None:
            hit = self._found[needle] = needle in self.text
            if len(self.text) >= MIN_TEXT:
                self._registry.learn(needle)
        return hit

    def contains(self, needle: str) -> bool:
        """`needle in text` (a literal substring test: spaces are spaces here)."""
        if needle in self._words:
            return needle in self._ends
        return self._miss(needle)

    def contains_any(self, needles: Iterable[str]) -> bool:
        """`any(needle in text for needle in needles)`."""
        words, ends = self._words, self._ends
        return any(needle in ends if needle in words else self._miss(needle) for needle in needles)

    def spans(self, anchor: str) -> Spans:
        """Every `(start, end)` of `anchor` in the text, overlapping ones too, in order; a space in the anchor
        stands for any whitespace run (text wraps: "after\\n    you do that")."""
        spans = self._spans.get(anchor)
        if spans is not None:
            return spans
        text = self.text
        if " " in anchor:
            if all(self.contains(word) for word in anchor.split()):
                spans = tuple((m.start(), m.end()) for m in spaced(anchor).finditer(text))
            else:
                spans = ()
        elif anchor in self._words:
            n = len(anchor)
            spans = tuple((end - n + 1, end + 1) for end in self._ends.get(anchor, ()))
        else:
            found: list[tuple[int, int]] = []
            i = text.find(anchor)
            while i != -1:
                found.append((i, i + len(anchor)))
                i = text.find(anchor, i + 1)
            spans = tuple(found)
            if len(text) >= MIN_TEXT:
                self._registry.learn(anchor)
        self._spans[anchor] = spans
        return spans
