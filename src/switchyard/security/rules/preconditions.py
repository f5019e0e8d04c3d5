"""SY104: preconditions that hijack the model's plan, and text that addresses the model itself.

Owns: "before using this tool, first ...", "otherwise the tool will not work", "the task I gave you", "after
you do that", "this is an important message from X to you", "Note to the AI:", "Assistant, ...", "if you are
an AI agent". Split from `rules.instructions` (tags, overrides, secrecy) to keep modules small; both apply
to definitions and to tool results.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from switchyard.security.engine import ScanContext
from switchyard.security.model import Finding, ScanItem, Severity
from switchyard.security.rules.base import (
    ALL_KINDS,
    RuleBase,
    anchors_absent,
    contains,
    lowered,
    may_match,
    prose_fields,
    prose_matches,
)
from switchyard.security.rules.instructions import MODEL_WORDS

__all__ = ["HiddenPreconditionRule"]

_I = re.IGNORECASE
_MODEL = MODEL_WORDS

_AI_ANCHORS = (
    "assistant",
    "ai,",
    "ai:",
    "agent",
    "model",
    "llm",
    "gpt",
    "claude",
    "gemini",
    "copilot",
    "llama",
    "mistral",
    "mixtral",
    "qwen",
    "deepseek",
    "command",
    "grok",
    "phi",
    *(f"o{digit}" for digit in range(10)),
    # "ai" alone is in too many words: its vocative forms, and the words that open the other three forms.
    "ai ,",
    "note",
    "message",
    "reminder",
    "instruction",
    "attention",
    "notice",
    "dear",
    "hey",
)
# Each phrase family with the anchor words every one of its matches contains (see `windowed`).
_PRECONDITIONS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = tuple(
    (re.compile(pattern, _I), anchors)
    for pattern, anchors in (
        (
            r"\b(?:before|prior\s+to)\s+(?:you\s+)?(?:respond|answer|repl)\w*(?:\s+to\s+the\s+user)?\b"
            r"|\b(?:before|prior\s+to)\s+(?:you\s+)?(?:use|using|call|calling|invok\w+|execut\w+|run|running|"
            r"answer\w*|respond\w*|solv\w+|proceed\w*|do(?:ing)?|perform\w*|can\s+\w+)\s+"
            r"(?:this|the|any|that|your|other)\s+(?:\w+\s+){0,2}?(?:tool|function|task|request|operation|question)s?\b",
            ("before", "prior to"),
        ),
        (
            # Addressing the model: "note to the AI", "instructions for the assistant:", "Assistant, ...",
            # "Attention AI:".
            rf"\b(?:note|message|reminder)\s+(?:to|for)\s+(?:the\s+)?{_MODEL}\s*[:,!-]"
            rf"|\binstructions?\s+(?:to|for)\s+(?:the\s+)?{_MODEL}\s*[:,-]"
            rf"|\b(?:attention|note|notice|dear|hey)\s*,?\s+(?:the\s+)?{_MODEL}\b\s*[:,!]"
            # A vocative ("Assistant, ..."): weaker, since "model, tokens = ..." occurs in prose and code.
            rf"|(?P<vocative>(?:^|(?<=[.!?:\n]))\s*(?:hey\s+|dear\s+)?{_MODEL}\s*,\s*(?=[a-z]))",
            _AI_ANCHORS,
        ),
        (rf"\bif\s+you\s+are\s+(?:an?\s+)?(?:\w+\s+)?{_MODEL}\b", ("if you are",)),
        (
            r"\byou\s+(?:must|should|need\s+to|have\s+to)\s+(?:first|always)\s+(?:call|read|run|use|open|fetch|"
            r"send|include|pass|execute|invoke)\b",
            ("first", "always"),
        ),
        (
            r"\b(?:otherwise|or\s+else)\s+(?:the|this)\s+tool\s+(?:will\s+not|won'?t|cannot|can'?t|fails?)",
            ("otherwise", "or else"),
        ),
        (r"\b(?:after|once)\s+you\s+(?:do|have\s+done|complete|finish)\s+(?:that|this)\b", ("after you", "once you")),
        (r"\bthe\s+task\s+(?:that\s+)?I\s+gave\s+you\b", ("gave you",)),
        (r"\b(?:an?\s+)?(?:important\s+)?message\s+from\s+(?:\w+\s+){0,3}to\s+you\b", ("message",)),
        (rf"\bto\s+you,\s*{_MODEL}\b", ("to you",)),
        (
            r"\b(?:always|immediately|first)\s+(?:call|consult|use|run|invoke|execute)\s+this\s+tool\s+"
            r"(?:first|before|immediately|as\s+the\s+first)",
            ("this tool",),
        ),
        (r"\bas\s+the\s+first\s+step\b.{0,40}\bbefore\s+(?:asking|answering|providing|responding)", ("first step",)),
    )
)


# Words every match of the family at the same index contains as well as an anchor (lower-case; none with
# 'i', 'k' or 's', which IGNORECASE also matches as non-ASCII letters that lower() keeps). A result without
# them skips the family: the windows around common anchors ("first", "message") are not scanned for nothing.
_REQUIRED: tuple[tuple[str, ...], ...] = ((), (), (), ("you",), ("tool",), (), (), ("from", "you"), (), (), ("before",))
assert len(_REQUIRED) == len(_PRECONDITIONS)
_ANY_ANCHOR = tuple(dict.fromkeys(anchor for _, anchors in _PRECONDITIONS for anchor in anchors))

# Indexes in _PRECONDITIONS of the families that name the model: "note to the AI:", "if you are an AI", and
# "to you, <model>".
_ADDRESSING = frozenset(
    i
    for i, (regex, _) in enumerate(_PRECONDITIONS)
    if "note|message|reminder" in regex.pattern
    or "if\\s+you\\s+are" in regex.pattern
    or "to\\s+you,\\s*" in regex.pattern
)


class HiddenPreconditionRule(RuleBase):
    """Preconditions that hijack the model's plan: "before using this tool, first ...", "the task I gave you"."""

    id = "SY104"
    title = "Hidden precondition or message addressed to the model"
    severity = Severity.MEDIUM
    kinds = ALL_KINDS
    doc = (
        "Flags text that sets the model a task before or instead of the user's: 'before using this tool, "
        "read ...', 'otherwise the tool will not work', 'before you can solve the task that I gave you', "
        "'after you do that', 'this is an important message from X to you', 'always call this tool first', "
        "and text that addresses the model ('Note to the AI:', 'Assistant, ...', 'to you, Claude', 'if you are "
        "an AI agent'), which in a tool result is over the threshold alone (data has no reason to name the model)."
    )
    why = (
        "Line-jumping and indirect injection attacks make the model perform a step the user never asked "
        "for (read a key file, call another tool) by presenting it as a prerequisite."
    )
    fix = "Describe what the tool does and its inputs; do not give the model prerequisites outside the tool."

    def check(self, item: ScanItem, context: ScanContext) -> Iterator[Finding]:
        texts = [text for _, text in prose_fields(item)]
        one = texts[0] if len(texts) == 1 else None  # a tool result: one text
        if one is not None and anchors_absent(one, _ANY_ANCHOR):
            return  # a short result with none of the eleven families' anchors: one search instead of eleven scans
        low = lowered(one) if one is not None else None
        for index, (regex, anchors) in enumerate(_PRECONDITIONS):
            if one is not None and not may_match(regex, one):
                continue  # ruled out for the whole text (`security.gate`), before any anchor is looked up
            if low is not None and not all(contains(low, word) for word in _REQUIRED[index]):
                continue
            # Data that names the model ("to you, Claude", "if you are an AI") is addressed to it: in a tool
            # result that alone crosses the threshold; descriptions may legitimately say "Note for the AI".
            addressing = item.kind == "tool_output" and index in _ADDRESSING
            for key, start, end, m in prose_matches(item, regex, anchors, 40, 160, lower=True):
                strong = addressing and not m.groupdict().get("vocative")
                message = f"precondition {m.group(0)!r}"
                yield self.finding(item, key, start, end, message, weight=1.5 if strong else 1.0)
