"""`security.anchors`: one set pass answers exactly what `str.find` answers, whatever was registered."""

from __future__ import annotations

import re
import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from switchyard.security.anchors import EAGER_AFTER, MIN_TEXT, AnchorRegistry, TextAnchors, spaced
from switchyard.security.rules.base import anchored


def _find_all(text: str, anchor: str) -> tuple[tuple[int, int], ...]:
    if " " in anchor:
        return tuple((m.start(), m.end()) for m in spaced(anchor).finditer(text))
    out: list[tuple[int, int]] = []
    i = text.find(anchor)
    while i != -1:
        out.append((i, i + len(anchor)))
        i = text.find(anchor, i + 1)
    return tuple(out)


def _registry(*anchors: str) -> AnchorRegistry:
    registry = AnchorRegistry()
    registry.register(anchors)
    return registry


_ANCHORS = ("aa", "aaa", "ab", "ba", "after you", "you", "not ", "x y z", "-->", "é")
_WORDS = ["a", "aa", "b", "after", "you", "not", "x", "y", "z", "\n  ", "\t", "-->", "é", "q" * 30]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), min_size=0, max_size=90), st.booleans())
def test_answers_equal_str_find_registered_or_not(words: list[str], register: bool) -> None:
    text = " ".join(words)
    registry = _registry(*_ANCHORS) if register else AnchorRegistry()
    anchors = TextAnchors(text, registry)
    for anchor in (*_ANCHORS, "unknown", "q q"):
        assert anchors.contains(anchor) == (anchor in text), anchor
        assert anchors.spans(anchor) == _find_all(text, anchor), anchor
    assert anchors.contains_any(("zz", "ab")) == ("zz" in text or "ab" in text)


def test_overlapping_occurrences_are_all_found() -> None:
    text = "a" * MIN_TEXT
    anchors = TextAnchors(text, _registry("aa", "aaa"))
    assert anchors.spans("aa") == tuple((i, i + 2) for i in range(MIN_TEXT - 1))
    assert anchors.spans("aaa") == tuple((i, i + 3) for i in range(MIN_TEXT - 2))


def test_a_space_in_an_anchor_matches_a_whitespace_run_but_contains_is_literal() -> None:
    text = "filler " * 30 + "after\n    you do that, after you"
    anchors = TextAnchors(text, _registry("after you", "after", "you"))
    start = text.index("after\n")
    assert anchors.spans("after you") == ((start, start + len("after\n    you")), (len(text) - 9, len(text)))
    assert anchors.contains("after you") is True  # the literal one at the end
    assert TextAnchors(text.replace("after you", "after  you"), _registry()).contains("after you") is False


def test_unknown_anchors_are_answered_then_learned() -> None:
    registry = _registry("alpha")
    text = "alpha beta gamma " * 10
    first = TextAnchors(text, registry)
    assert first.contains("beta")
    assert not first.contains("delta")
    assert first.spans("gamma") == _find_all(text, "gamma")
    assert "beta" not in registry.anchors  # learned for the next text, not this one
    second = TextAnchors(text, registry)
    registry.snapshot()  # what the next set pass does first
    assert {"alpha", "beta", "delta", "gamma"} <= registry.anchors
    assert second.contains("beta")
    assert not second.contains("delta")
    assert second.spans("gamma") == first.spans("gamma")


def test_short_texts_skip_the_automaton() -> None:
    registry = _registry("ab")
    anchors = TextAnchors("xab", registry)
    assert anchors.contains("ab")
    assert anchors.spans("ab") == ((1, 3),)
    assert anchors.contains("new") is False
    assert "new" not in registry.anchors
    assert "new" not in registry.snapshot()[1]


def test_threads_scanning_different_texts_get_their_own_answers() -> None:
    registry = AnchorRegistry()
    words = [f"w{i:03d}" for i in range(200)]
    errors: list[str] = []

    def work(offset: int) -> None:
        for round_ in range(30):
            chosen = words[offset::4]
            text = " ".join(chosen) * 3
            anchors = TextAnchors(text, registry)
            for word in words[(round_ % 7) :: 5]:
                if anchors.contains(word) != (word in text) or anchors.spans(word) != _find_all(text, word):
                    errors.append(word)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


def test_scan_memo_is_per_thread() -> None:
    from switchyard.security.engine import SCAN_MEMO  # noqa: PLC0415

    SCAN_MEMO.value = "main"
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(SCAN_MEMO.value))
    thread.start()
    thread.join()
    assert seen == [None]
    assert SCAN_MEMO.value == "main"
    SCAN_MEMO.value = None


_PREFIXED = re.compile(r"\bsk-(?:ant-)?[A-Za-z0-9_-]{6,}\b")
_OFFSET = re.compile(r"(?<![=])\b(?:sk|rk)_live_[0-9A-Za-z]{4,}\b")
_PARTS = ["sk-", "SK-", "ant-", "abc", "x", "=", " ", "-", "_", "sk_live_", "rk_LIVE_", "é", "a" * 50]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_PARTS), max_size=80))
def test_anchored_equals_a_full_scan(parts: list[str]) -> None:
    text = "".join(parts)
    for regex, anchors, offset in ((_PREFIXED, ("sk-",), 0), (_OFFSET, ("_live_",), 2)):
        full = [(m.start(), m.end()) for m in regex.finditer(text)]
        assert [(m.start(), m.end()) for m in anchored(regex, text, anchors, offset)] == full


def test_the_set_pass_waits_for_enough_questions_and_answers_the_same() -> None:
    words = [f"w{i:02d}x" for i in range(40)]
    registry = _registry(*words)
    text = " ".join(words[::2]) * 3
    anchors = TextAnchors(text, registry)
    for word in words[:EAGER_AFTER]:
        assert anchors.contains(word) == (word in text)
    assert not anchors._present  # pyright: ignore[reportPrivateUsage]  # still answered by str.find
    for word in words[EAGER_AFTER:]:
        assert anchors.contains(word) == (word in text)
        assert anchors.spans(word) == _find_all(text, word)
    assert anchors._present  # pyright: ignore[reportPrivateUsage]  # the set pass ran
