"""The pattern gate: which rule patterns can match a text at all, for every known pattern in one RE2 pass.

Owns: `superset_pattern` (a Python pattern rewritten for RE2 so that it matches wherever the Python pattern
matches), the registry of gated patterns with one RE2 set over them, and `TextGate` (the answers for one
text). Does not own: which patterns a rule runs or where (`rules.base` asks the gate before a windowed
scan), nor the anchors those scans look for (`security.anchors`).

A tool result is mostly clean. The rules' windowed scans still run a Python regex around every anchor word
they find ("you", "before", "message" occur in any prose), and those scans are most of a clean 10 KB
result's cost. An RE2 set (google-re2: one DFA over every pattern) reads the text once and says which
patterns can match anywhere in it; a pattern it rules out is not scanned at all. RE2 lacks lookarounds and
backreferences, so each Python pattern is rewritten into a *superset*: assertions RE2 cannot express are
dropped, long bounded repetitions become unbounded, atomic groups become plain ones. Whatever the Python
pattern matches, the rewrite matches too; the converse need not hold, which costs only a scan.

RE2 reads bytes: the text's ASCII copy (`security.text.ascii_copy`, every non-ASCII character one `?`). For
an ASCII text the rewrite is exact up to those relaxations. For any other text a second rewrite is used in
which everything that can match a non-ASCII character also accepts `?` (a literal letter, a class, `.`,
`\\w`), the letters IGNORECASE also matches as non-ASCII ones (`i`, `k`, `s`: U+0130/U+0131, U+212A, U+017F)
accept `?`, and word boundaries are dropped (`?` is not a word character, a non-ASCII letter is).

Exact by construction, and checked at run time: the set holds a last pattern that matches every text; when
RE2's DFA runs out of memory it returns no match at all, that pattern is missing, and every pattern is then
answered "may match". A pattern the rewrite cannot handle (a conditional group, a locale flag) is never
gated. Like the anchor registry, patterns are learned on first use (answered "may match" until the set is
rebuilt with them before the next text), so answers never depend on what was learned.

Thread-safe: a built set is never changed (a rebuild makes a new one, swapped in under a lock), and a
`TextGate` belongs to the scan of one text on one thread.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
from typing import Any

import re2  # pyright: ignore[reportMissingTypeStubs]

from switchyard.security.text import ascii_copy

__all__ = ["GateRegistry", "TextGate", "default_gate_registry", "superset_pattern"]

logger = logging.getLogger("switchyard.security")

_RE2: Any = re2  # untyped package
# CPython's own regex parser (what `re.compile` uses; `sre_parse` is its deprecated public name). Without it
# (another Python implementation) nothing is gated.


def _parser_modules() -> tuple[Any, Any]:
    try:
        return importlib.import_module("re._parser"), importlib.import_module("re._constants")
    except ImportError:  # pragma: no cover - CPython 3.11+ has both
        return None, None


_PARSER, _C = _parser_modules()

_MAX_PATTERNS = 512
_MAX_BOUND = 16
"""A bounded repetition up to this many stays bounded; a longer one becomes `*` or `+` (a superset that
keeps RE2's DFA small)."""
_SPACE = r"\t\n\x0b\x0c\r \x1c-\x1f"  # Python's `\s` on ASCII (RE2's `\s` lacks \x0b and \x1c-\x1f)
_NOT_SPACE = r"\x00-\x08\x0e-\x1b!-\x7f"
_WORD = "0-9A-Za-z_"
_NOT_WORD = r"\x00-/:-@\[-^`{-\x7f"
_DIGIT = "0-9"
_NOT_DIGIT = r"\x00-/:-\x7f"
_ANY_BYTE = r"[\x00-\xff]"
_Q = r"\x3f"  # '?', what every non-ASCII character is in the ASCII copy
_FOLDS_TO_NON_ASCII = frozenset("iksIKS")


class _Unsupported(Exception):
    """A construct the rewrite does not handle: the pattern is not gated."""


def _esc(code: int) -> str:
    ch = chr(code)
    return ch if ch.isascii() and ch.isalnum() else f"\\x{code:02x}"


class _Rewriter:
    """One pattern's RE2 superset; `wide` for the ASCII copy of a text that is not ASCII."""

    def __init__(self, wide: bool) -> None:
        self.wide = wide
        c: Any = _C
        self.c = c
        self.categories: dict[Any, tuple[str, bool]] = {
            c.CATEGORY_DIGIT: (_DIGIT, True),
            c.CATEGORY_NOT_DIGIT: (_NOT_DIGIT, False),
            c.CATEGORY_SPACE: (_SPACE, True),
            c.CATEGORY_NOT_SPACE: (_NOT_SPACE, False),
            c.CATEGORY_WORD: (_WORD, True),
            c.CATEGORY_NOT_WORD: (_NOT_WORD, False),
        }

    def sequence(self, data: Any, flags: int) -> str | None:
        """The rewrite of a sequence of nodes, None when it can match nothing (in an ASCII text)."""
        out: list[str] = []
        for op, av in data:
            part = self.node(op, av, flags)
            if part is None:
                return None
            out.append(part)
        return "".join(out)

    def node(self, op: Any, av: Any, flags: int) -> str | None:
        """The rewrite of one parsed node (`re._parser` opcode and argument) under `flags`."""
        c = self.c
        icase = bool(flags & c.SRE_FLAG_IGNORECASE)
        if op is c.LITERAL:
            return self._literal(av, icase)
        if op is c.NOT_LITERAL:
            if self.wide and av == ord("?"):
                return _ANY_BYTE
            return f"[^{_esc(av)}]" if av < 128 else _ANY_BYTE
        if op is c.ANY:
            return _ANY_BYTE if flags & c.SRE_FLAG_DOTALL else r"[^\n]"
        if op is c.IN:
            return self._class(av, icase)
        if op is c.CATEGORY:
            return self._class([(c.CATEGORY, av)], icase)
        if op is c.SUBPATTERN:
            _, add, remove, sub = av
            inner = (flags | add) & ~remove
            body = self.sequence(sub.data, inner)
            if body is None:
                return None
            return f"(?{self.flag_group(inner)}:{body})"
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            low, high, sub = av
            body = self.sequence(sub.data, flags)
            if body is None:
                return "" if low == 0 else None
            if high is c.MAXREPEAT or high > _MAX_BOUND:
                quantifier = "*" if low == 0 else ("+" if low > _MAX_BOUND else f"{{{low},}}")
            else:
                quantifier = f"{{{low},{high}}}"
            return f"(?:{body}){quantifier}"
        if op is c.BRANCH:
            alternatives = [a for a in (self.sequence(b.data, flags) for b in av[1]) if a is not None]
            return f"(?:{'|'.join(alternatives)})" if alternatives else None
        if op is c.ATOMIC_GROUP:
            body = self.sequence(av.data, flags)
            return None if body is None else f"(?:{body})"
        if op in (c.ASSERT, c.ASSERT_NOT):
            return ""  # dropped: the rest matches wherever the whole does
        if op is c.AT:
            return self._at(av, flags)
        if op is c.GROUPREF:
            return f"{_ANY_BYTE}*"  # whatever the group matched
        raise _Unsupported(str(op))

    def flag_group(self, flags: int) -> str:
        """`flags` as RE2 group flags: `i-m` is case-insensitive, not multi-line."""
        c = self.c
        on = ("i" if flags & c.SRE_FLAG_IGNORECASE else "") + ("m" if flags & c.SRE_FLAG_MULTILINE else "")
        off = ("" if flags & c.SRE_FLAG_IGNORECASE else "i") + ("" if flags & c.SRE_FLAG_MULTILINE else "m")
        return f"{on}-{off}"

    def _literal(self, code: int, icase: bool) -> str | None:
        if code >= 128:
            return _Q if self.wide else None
        if self.wide and icase and chr(code) in _FOLDS_TO_NON_ASCII:
            return f"[{_esc(code)}{_Q}]"
        return _esc(code)

    def _class(self, items: Any, icase: bool) -> str | None:
        c = self.c
        negated = False
        parts: list[str] = []
        for op, av in items:
            if op is c.NEGATE:
                negated = True
            elif op is c.LITERAL:
                if av < 128:
                    parts.append(_esc(av))
            elif op is c.RANGE:
                low, high = av
                if low < 128:
                    parts.append(f"{_esc(low)}-{_esc(min(high, 127))}")
            elif op is c.CATEGORY:
                if av not in self.categories:
                    raise _Unsupported(str(av))
                parts.append(self.categories[av][0])
            else:
                raise _Unsupported(str(op))
        if self.wide:
            # A non-ASCII character is '?' here: a negated class accepts it (Python's may too), and so does a
            # positive one (it may hold a category, a non-ASCII member or a letter IGNORECASE folds).
            if negated:
                return f"(?:[^{''.join(parts)}]|{_Q})" if parts else _ANY_BYTE
            return f"[{''.join(parts)}{_Q}]"
        if negated:
            return f"[^{''.join(parts)}]" if parts else r"[\x00-\x7f]"
        return f"[{''.join(parts)}]" if parts else None

    def _at(self, code: Any, flags: int) -> str:
        c = self.c
        if code is c.AT_BEGINNING:
            return "(?m:^)" if flags & c.SRE_FLAG_MULTILINE else r"\A"
        if code is c.AT_BEGINNING_STRING:
            return r"\A"
        if code is c.AT_END:
            return "(?m:$)"  # Python's `$` is the end or before a final newline: a subset of this
        if code is c.AT_END_STRING:
            return r"\z"
        if code in (c.AT_BOUNDARY, c.AT_NON_BOUNDARY):
            if self.wide:
                return ""  # '?' stands for letters too: its word-ness is unknown
            return r"\b" if code is c.AT_BOUNDARY else r"\B"
        raise _Unsupported(str(code))


def superset_pattern(regex: re.Pattern[str], *, wide: bool = False) -> str | None:
    """An RE2 pattern (for google-re2 with Latin-1 bytes) that matches the ASCII copy of a text wherever
    `regex` matches the text; for ASCII texts, or with `wide` for any text. `r"\\z\\A"` (never matches) when
    `regex` cannot match an ASCII text; None when it cannot be rewritten (the pattern is then never gated)."""
    if _PARSER is None or regex.flags & re.LOCALE:
        return None
    try:
        tree: Any = _PARSER.parse(regex.pattern, regex.flags)
        rewriter = _Rewriter(wide)
        flags = int(tree.state.flags)
        body = rewriter.sequence(tree.data, flags)
    except (_Unsupported, re.error, RecursionError, AttributeError, TypeError, ValueError):
        return None
    if body is None:
        return r"\z\A"
    return f"(?{rewriter.flag_group(flags)}:{body})"


def _options() -> Any:
    options: Any = _RE2.Options()
    options.encoding = _RE2.Options.Encoding.LATIN1
    options.max_mem = 64 << 20
    options.log_errors = False
    return options


class _GateSet:
    """An RE2 set over the rewrites of some patterns, plus a last pattern that matches every text."""

    __slots__ = ("_set", "index", "sentinel")

    def __init__(self, rewrites: dict[int, str]) -> None:
        self._set: Any = _RE2.Set.SearchSet(_options())
        self.index: dict[int, int] = {}
        for key, pattern in rewrites.items():
            self.index[key] = int(self._set.Add(pattern.encode("ascii")))
        self.sentinel = int(self._set.Add(rb"\z"))
        self._set.Compile()

    def matching(self, data: bytes) -> frozenset[int] | None:
        """Indexes of the patterns that may match `data`; None when the set could not tell (DFA out of memory)."""
        found: list[int] | None = self._set.Match(data)
        if not found or self.sentinel not in found:
            return None
        return frozenset(found)


class GateRegistry:
    """The gated patterns (by identity: each is held, so its id stays its own) and two sets over them, one
    for ASCII texts and one for the rest. Rebuilt, never changed, when patterns are learned."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[int, re.Pattern[str]] = {}
        self._rewrites: tuple[dict[int, str], dict[int, str]] = ({}, {})
        self._sets: tuple[_GateSet | None, _GateSet | None] = (None, None)
        self._pending: dict[int, re.Pattern[str]] = {}

    def patterns(self) -> tuple[re.Pattern[str], ...]:
        """Every pattern offered so far, gated or not."""
        return tuple(self._held.values())

    def gated(self, regex: re.Pattern[str]) -> bool:
        """Whether `regex` is in the current sets."""
        return self.knows(regex) and id(regex) in self._rewrites[0]

    def knows(self, regex: re.Pattern[str]) -> bool:
        """Whether `regex` was offered already (gated or found not gateable)."""
        return self._held.get(id(regex)) is regex

    def learn(self, regex: re.Pattern[str]) -> None:
        """Offer `regex` for the next sets (ignored when known, or when the registry is full)."""
        if not self.knows(regex) and len(self._held) + len(self._pending) < _MAX_PATTERNS:
            self._pending[id(regex)] = regex

    def snapshot(self, wide: bool) -> _GateSet | None:
        """The set for ASCII texts (or, with `wide`, for the others), rebuilt first if patterns were learned."""
        if self._pending:
            with self._lock:
                if self._pending:
                    self._rebuild()
        return self._sets[wide]

    def _rebuild(self) -> None:
        pending, self._pending = self._pending, {}
        exact, wide = dict(self._rewrites[0]), dict(self._rewrites[1])
        for key, regex in pending.items():
            self._held[key] = regex
            ascii_rewrite, wide_rewrite = superset_pattern(regex), superset_pattern(regex, wide=True)
            if ascii_rewrite is None or wide_rewrite is None or not _compiles(ascii_rewrite, wide_rewrite):
                logger.debug("pattern not gated: %.80r", regex.pattern)
                continue
            exact[key], wide[key] = ascii_rewrite, wide_rewrite
        try:
            sets = (_GateSet(exact), _GateSet(wide)) if exact else (None, None)
        except Exception:  # the set as a whole did not compile: keep the last one; the new patterns stay ungated
            logger.warning("pattern gate: %d new pattern(s) left ungated (RE2 set did not compile)", len(pending))
            return
        self._rewrites, self._sets = (exact, wide), sets


def _compiles(*patterns: str) -> bool:
    try:
        for pattern in patterns:
            _RE2.compile(pattern.encode("ascii"), _options())
    except Exception:  # google-re2 raises its own error type
        return False
    return True


_DEFAULT = GateRegistry()


def default_gate_registry() -> GateRegistry:
    """The process-wide registry the rules share."""
    return _DEFAULT


class TextGate:
    """Which gated patterns may match one text: one set pass on first use, then a dict lookup per pattern."""

    __slots__ = ("_index", "_matching", "_registry", "text")

    def __init__(self, text: str, registry: GateRegistry | None = None) -> None:
        self.text = text
        self._registry = registry or _DEFAULT
        gate_set = self._registry.snapshot(not text.isascii())
        self._index: dict[int, int] = {} if gate_set is None else gate_set.index
        self._matching = None if gate_set is None else gate_set.matching(ascii_copy(text))

    def may_match(self, regex: re.Pattern[str]) -> bool:
        """False only when `regex` is sure to have no match in the text (`regex.search(text) is None`)."""
        index = self._index.get(id(regex))
        if index is None:
            self._registry.learn(regex)  # a no-op for a pattern offered before
            return True
        matching = self._matching
        return matching is None or index in matching
