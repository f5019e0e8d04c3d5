"""RE2 prefilters: the same matches as a slow Python regex, found by trying it only where it can start.

Owns: `Prefilter` (a Python pattern plus RE2 patterns that find every position where it can start) and `WS`.
Does not own any rule's pattern (the rule modules write both patterns), where the anchors of a windowed scan
are (`rules.base`), nor the ASCII copy RE2 reads (`security.text.ascii_copy`).

Python's `re` engine tries a pattern at every position of the text; a rule pattern with several
alternatives costs about 0.1-0.2 µs per position, which is most of a 10 KB tool result's scanning time.
RE2 (google-re2) runs a DFA, about 20x faster, but lacks lookarounds and named-group semantics the rules
use. So each slow pattern gets a *candidate* pattern for RE2: a relaxation of the pattern's beginning that
matches, starting at the same position, wherever the Python pattern matches (at every position `p` where
`regex.match(text, p)` succeeds, some candidate pattern, shifted by its offset, matches at `p`). RE2 lists
every start position of the candidates (overlapping ones too), and the Python pattern is tried at those
positions only, in order and without overlap, exactly as `finditer` would: the matches are the same objects
`finditer` returns, with the same groups and spans.

RE2 reads an ASCII copy of the text: each non-ASCII character becomes one `?` (offsets stay the same). A
candidate pattern must therefore also accept `?` wherever the Python pattern accepts a non-ASCII character
(`\\s` is written `WS`, `\\w` as `[\\w?]`); `\\b` needs nothing, since `?` is not a word character and the
rules' patterns put `\\b` next to ASCII letters only. A candidate pattern used with windows must not end in
`\\b` or `$`: RE2 sees the text beyond a window's end, where Python's scan sees the end of the text.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import re2  # pyright: ignore[reportMissingTypeStubs]

from switchyard.security.text import ascii_copy

_RE2: Any = re2  # untyped package

__all__ = ["WS", "Prefilter"]

WS = r"[\t\n\x0b\x0c\r \x1c-\x1f?]"
"""What Python's `\\s` matches, in a candidate pattern: ASCII whitespace, the separators 0x1c-0x1f, and `?`
(every non-ASCII space, such as U+00A0, becomes `?` in the ASCII copy)."""

_OPTIONS: Any = _RE2.Options()
_OPTIONS.encoding = _RE2.Options.Encoding.LATIN1  # bytes are characters: offsets are the str's offsets


def _first_start(compiled: Any) -> Callable[[bytes, int], int]:
    """`lambda data, pos: compiled.search(data, pos).start()` (-1 when none), through google-re2's own
    `_regexp.Match` when it is there and answers like `search` (half the cost per call: no generator, no match
    object), else through `search`."""

    def public(data: bytes, pos: int) -> int:
        m = compiled.search(data, pos)
        return -1 if m is None else int(m.start())

    raw = getattr(compiled, "_regexp", None)
    anchor = getattr(getattr(_RE2, "_Anchor", None), "UNANCHORED", None)
    if raw is None or anchor is None or not callable(getattr(raw, "Match", None)):
        return public

    def direct(data: bytes, pos: int) -> int:
        return int(raw.Match(anchor, data, pos, len(data))[0][0])

    try:
        sample = b"a b? ab\n" * 4
        if all(direct(sample, i) == public(sample, i) for i in range(len(sample) + 1)):
            return direct
    except Exception:  # another google-re2 version: fall back to its public API
        pass
    return public


class Prefilter:
    """`regex.finditer`, tried only where RE2 finds one of `candidates` (`(pattern, offsets)` pairs: a match of
    the candidate pattern at `s` means the Python pattern may start at `s + offset` for each of `offsets`; one
    pattern with alternatives that start at different distances before the Python match costs fewer RE2 calls
    than one pattern per distance).

    Thread-safe and reusable (compiled once, at import).
    """

    def __init__(
        self, regex: re.Pattern[str], candidates: Sequence[tuple[str, Sequence[int]]], *, min_length: int = 256
    ) -> None:
        if regex.flags & re.IGNORECASE:
            raise ValueError("a prefiltered pattern runs on lower-cased text: compile it without IGNORECASE")
        self.regex = regex
        self.min_length = min_length
        self._candidates: tuple[tuple[Callable[[bytes, int], int], tuple[int, ...]], ...] = tuple(
            (_first_start(_RE2.compile(pattern.encode("ascii"), _OPTIONS)), tuple(offsets))
            for pattern, offsets in candidates
        )

    def starts(self, text: str) -> list[int]:
        """Every position of `text` (lower-cased) where the Python pattern may start, sorted."""
        data = ascii_copy(text)
        found: set[int] = set()
        for first_start, offsets in self._candidates:
            start = first_start(data, 0)
            while start >= 0:
                found.update(start + offset for offset in offsets)
                start = first_start(data, start + 1)
        return sorted(found)

    def finditer(
        self, text: str, windows: Sequence[tuple[int, int]] | None = None, *, low: str | None = None
    ) -> Iterator[re.Match[str]]:
        """The matches of `regex.finditer(text)` (or, with `windows`, of `regex.finditer(text, lo, hi)` for each
        sorted, disjoint window, a match never starting before the previous one's end). RE2 reads `low`, the
        lower-cased text (same length), when `text` is not lower-cased itself: the candidate patterns are
        then written for `low` (a case-insensitive part of the Python pattern in lower case, with `[i?]`,
        `[k?]` and `[s?]` for the letters IGNORECASE also matches as U+0130/U+0131, U+212A and U+017F)."""
        spans = ((0, len(text)),) if windows is None else windows
        last_end = -1
        if len(text) < self.min_length:
            for lo, hi in spans:
                for m in self.regex.finditer(text, max(lo, last_end), hi):
                    last_end = m.end()
                    yield m
            return
        if low is not None and len(low) != len(text):
            raise ValueError("low must be text lower-cased with the same length")
        starts = self.starts(text if low is None else low)
        match = self.regex.match
        for lo, hi in spans:
            for i in range(bisect_left(starts, max(lo, last_end)), bisect_left(starts, hi)):
                p = starts[i]
                if p < last_end:
                    continue
                m = match(text, p, hi)
                if m is not None:
                    yield m
                    # finditer never returns an empty match next to the previous one; the rules' patterns
                    # never match empty, but stay exact if one does.
                    last_end = m.end() if m.end() > p else p + 1
