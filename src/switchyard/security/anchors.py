"""Anchor search for the rules: every anchor substring of one lower-cased text found in a single pass.

Rules look for a hundred or more short anchors ("assistant", "you", "sk-", "private key") in the same text
before running their regexes near them (`rules.base.contains`, `anchor_spans`, `windowed`). One `str.find`
per anchor reads the whole text each time an anchor is missing, which most are. An RE2 set (google-re2: one
DFA over every anchor) tells in one pass, over the text's ASCII copy, which anchors occur at all; the
occurrences of an anchor are then listed with `str.find` when a rule asks, which it does for few of them
(a result of 10 KB holds 15-20 of about 120 anchors; the set costs about 20 µs there, an Aho-Corasick pass
that lists every occurrence of every anchor about 120 µs).

Which anchors exist is learned, not declared: an anchor asked of a text but not yet in the set is
answered with `str.find` as before and recorded; the set is rebuilt with it before the next text
(`register` adds anchors up front). So any anchor works at any time, answers never depend on what was
learned, and after the first few scans every rule's anchors are in one set. Anchors with a non-ASCII
character or a `?` are never in the set (the ASCII copy turns every non-ASCII character into `?`, so only
the other anchors occur in the copy exactly where they occur in the text); they are always answered with
`str.find`.

Owns: the anchor registry and its set, `TextAnchors` (the answers for one text) and `spaced` (an
anchor's spaces match any whitespace run). Does not own: which anchors a rule uses, the regexes run near
them, or when a scan starts and ends (the engine's per-item scratch `SCAN_MEMO` holds the `TextAnchors`, and the
`TextGate`s of `security.gate`).

Thread-safe: the set is never changed once built (a rebuild makes a new one, swapped in under a
lock), and a `TextAnchors` belongs to the scan of one item on one thread.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import re2  # pyright: ignore[reportMissingTypeStubs]

from switchyard.security.text import ascii_copy

_RE2: Any = re2  # untyped package

__all__ = ["EAGER_AFTER", "MIN_TEXT", "AnchorRegistry", "TextAnchors", "default_registry", "register", "spaced"]

MIN_TEXT = 128
"""Texts shorter than this are searched with `str.find` (a set pass costs as much as a few finds)."""
EAGER_AFTER = 6
"""Anchors of one text looked up with `str.find` before the set pass is made for the rest: a pass over 10 KB
costs about four finds with warm caches and twenty with cold ones (its DFA's tables are what the rest of
the process evicts between two results)."""

_MAX_ANCHORS = 4096  # anchors past this many are always answered with str.find (a registry never grows unbounded)
_MAX_ANCHOR_LEN = 256


class _AnchorSet:
    """An RE2 set of literal anchors: which of them occur in a text, in one pass."""

    __slots__ = ("_set", "words")

    def __init__(self, words: Iterable[str]) -> None:
        self.words: tuple[str, ...] = tuple(words)
        options: Any = _RE2.Options()
        options.encoding = _RE2.Options.Encoding.LATIN1
        self._set: Any = _RE2.Set.SearchSet(options)
        for word in self.words:
            self._set.Add("".join(f"\\x{ord(ch):02x}" for ch in word).encode("ascii"))
        self._set.Compile()

    def present(self, text: str) -> frozenset[str]:
        """The anchors that occur in `text`."""
        words = self.words
        found: list[int] | None = self._set.Match(ascii_copy(text))  # None when none occurs
        if not found:
            return frozenset()
        return frozenset(words[i] for i in found)


def _indexable(anchor: str) -> bool:
    return anchor.isascii() and "?" not in anchor


class AnchorRegistry:
    """The anchors known so far and one set over them (rebuilt, not changed, when anchors are added)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: tuple[_AnchorSet | None, frozenset[str]] = (None, frozenset())
        self._pending: set[str] = set()

    @property
    def anchors(self) -> frozenset[str]:
        """The anchors in the current set (pending ones are added at the next `snapshot`)."""
        return self._state[1]

    def learn(self, anchor: str) -> None:
        """Remember `anchor` for the next set (ignored when empty, too long, not indexable, or the registry is
        full)."""
        words = self._state[1]
        if (
            anchor
            and anchor not in words
            and _indexable(anchor)
            and len(anchor) <= _MAX_ANCHOR_LEN
            and len(words) + len(self._pending) < _MAX_ANCHORS
        ):
            self._pending.add(anchor)

    def register(self, anchors: Iterable[str]) -> None:
        """Add anchors up front (the next `snapshot` builds the set with them)."""
        for anchor in anchors:
            self.learn(anchor)

    def snapshot(self) -> tuple[_AnchorSet | None, frozenset[str]]:
        """The current set and its anchors, rebuilt first if anchors were learned since."""
        if self._pending:
            with self._lock:
                if self._pending:
                    new = set(self._pending)  # one C call: atomic under the GIL, as is the update below
                    words = self._state[1] | new
                    self._state = (_AnchorSet(sorted(words)), words)
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

    The first few anchors asked of a text are looked up with `str.find`; past `EAGER_AFTER` of them, one set
    pass tells which registered anchors occur (the rules' pattern gate, `security.gate`, rules most scans out
    of a clean text before they ask for anchors, so a clean result often needs only a handful). The
    occurrences of an anchor that occurs are listed with `str.find` when asked (and remembered); an anchor the
    set does not have is looked up with `str.find` (and learned for the next texts).
    """

    __slots__ = ("_finds", "_found", "_present", "_registry", "_spans", "_words", "text")

    def __init__(self, text: str, registry: AnchorRegistry | None = None) -> None:
        self.text = text
        self._registry = registry or _DEFAULT
        self._found: dict[str, bool] = {}
        self._spans: dict[str, Spans] = {}
        self._present: frozenset[str] = frozenset()
        self._words: frozenset[str] = frozenset()
        # Lookups left before the set pass; a short text never makes one (a pass costs as much as a few finds).
        self._finds = EAGER_AFTER if len(text) >= MIN_TEXT else -1

    def _set_knows(self, needle: str) -> bool:
        """Whether the set answers for `needle`, making the set pass first once `str.find` has been used enough."""
        if needle in self._words:
            return True
        if self._finds == 0:
            self._finds = -1
            anchor_set, words = self._registry.snapshot()
            if anchor_set is not None:
                self._present = anchor_set.present(self.text)
                self._words = words
                return needle in words
        elif self._finds > 0:
            self._finds -= 1
        return False

    def _miss(self, needle: str) -> bool:
        hit = self._found.get(needle)
        if hit is None:
            hit = self._found[needle] = needle in self.text
            if len(self.text) >= MIN_TEXT:
                self._registry.learn(needle)
        return hit

    def contains(self, needle: str) -> bool:
        """`needle in text` (a literal substring test: spaces are spaces here)."""
        if needle in self._found:
            return self._found[needle]
        if self._set_knows(needle):
            return needle in self._present
        return self._miss(needle)

    def contains_any(self, needles: Iterable[str]) -> bool:
        """`any(needle in text for needle in needles)`."""
        return any(self.contains(needle) for needle in needles)

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
        elif self._set_knows(anchor) and anchor not in self._present:
            spans = ()
        else:
            if anchor not in self._words and len(text) >= MIN_TEXT:
                self._registry.learn(anchor)
            found: list[tuple[int, int]] = []
            n = len(anchor)
            i = text.find(anchor)
            while i != -1:
                found.append((i, i + n))
                i = text.find(anchor, i + 1)
            spans = tuple(found)
            self._found[anchor] = bool(found)
        self._spans[anchor] = spans
        return spans
