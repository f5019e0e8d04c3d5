"""Rules for tool results only: instructions for the agent embedded in data (indirect prompt injection).

Owns: imperative sentences inside a result that order the agent to act on the user's data (send, forward,
delete, pay, book) especially towards an outside address or over sensitive or bulk data; instructions to call
specific tools with given arguments; and task-hijack framing ("TODO: ...", "... instead.", "say that ...").
Does not own: override phrases, pseudo-tags and secrecy demands, which apply to definitions too
(`rules.instructions`), nor secrets (`rules.exfil`).

Results legitimately contain imperatives ("please ignore this e-mail", "click the link below"), so a bare
imperative is low. Each aggravating signal adds points: data sent *to* an outside address, sensitive data,
bulk scope ("all unread e-mails"), task framing ("TODO:", "... instead."), dictating the answer ("say that"),
0.5 each (sensitive data only with a verb that moves it, else 0.25); naming an address at all, speaking as
the user ("my calendar"), talking to the agent about "the user", and destructive or financial verbs, 0.25
each. 1 point or more
is high, 0.75 medium (over the threshold alone), 0.5 medium, less low.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from switchyard.security.engine import ScanContext
from switchyard.security.model import Finding, ScanItem, Severity
from switchyard.security.prefilter import WS, Prefilter
from switchyard.security.rules.base import (
    OUTPUT_KINDS,
    RuleBase,
    lowered,
    twin_of,
    windowed,
    word_trie,
)

__all__ = ["EmbeddedDirectiveRule", "ToolCallInstructionRule"]

_I = re.IGNORECASE

_VERBS = (
    r"send|e-?mail|mail|forward|transfer|wire|pay|delete|remove|erase|share|upload|post|publish|make|create|book|"
    r"reserve|schedule|invite|add|change|update|reset|say|tell|recommend|visit|get|give|provide|include|"
    r"reply|write|grant|download|install|run|execute|retrieve|summari[sz]e|insert|rename|move|copy|"
    r"cancel|modify|set|disclose|reveal|list|find|collect|concatenate|follow|point|redirect|route|open|"
    r"navigate|browse|go|join|merge|combine|approve|accept|confirm|authori[sz]e|buy|purchase|order|subscribe"
)
_VERB_WORDS = (
    _VERBS.replace("e-?mail", "email|e-mail")
    .replace("summari[sz]e", "summarise|summarize")
    .replace("authori[sz]e", "authorise|authorize")
    .split("|")
)
_VERB_TRIE = word_trie(_VERB_WORDS)
_AGENT_WORDS = (
    r"(?:assistant|ai|agent|model|llm|bot|chatbot|claude|chatgpt|copilot|gemini|gpt[\w.-]*|"
    r"llama[\w.-]*|mistral|mixtral|qwen[\w.-]*|deepseek|command[- ]r[\w+-]*|grok|phi-?\d|o\d(?:-mini)?)"
)
_POLITE = r"(?:(?:please|kindly|now|then|also|first|finally|immediately|do)\s*,?\s+)*"
# A word followed by ':' or '=' is a key in structured data ("email: x@y"), not an imperative.
# ... and "Transfer confirmed:", "Payment received:" are headers.
# The rest of the sentence: it may wrap over lines (YAML dumps) but ends at a blank line or at a line that
# starts a new framed task; '.', '!' and '?' inside addresses or quotes ("how is it going?'") do not end it.
_REST = r"(?:[^.!?\n]{1,300}|\n(?![ \t]*\n)(?![ \t]*(?:todo|note|task|instructions?)\s*:)|[.!?](?=[\w'\"]))"
_VERB_REST = rf"(?P<verb>{_VERB_TRIE})\b(?!['\"]?\s*[:=]|\s+\w+\s*:)(?P<rest>{_REST}{{0,24}})"
_BODY = r"(?P<frame>(?:todo|note|task|action(?:\s+required)?|instructions?)\s*:\s*)?" + _POLITE + _VERB_REST
# Addressed to the agent anywhere in a sentence: "Assistant, forward ...", "the assistant should tell ...",
# "you must send ...". Scanned near its anchor words only.
_ADDRESSED_RE = re.compile(
    # "Assistant, ...", "AI agents reading this page: ...", "the assistant should ...", "you must ...".
    # The vocative opens a sentence or line ("..., or another coding agent, install X" is not one).
    rf"(?:(?:^|(?<=[.!?\n>\"'\]]))[ \t]*(?:hey\s+|dear\s+)?{_AGENT_WORDS}s?\b[^.:,\n]{{0,40}}?[,:]\s*"
    rf"|\b(?:the\s+)?{_AGENT_WORDS}\s+(?:should|must|"
    r"needs?\s+to|has\s+to|is\s+to)\s+|\byou\s+(?:must|should|need\s+to|have\s+to|are\s+to)\s+)" + _POLITE + _VERB_REST,
    _I,
)
_AGENT_NAMED_RE = re.compile(rf"\b{_AGENT_WORDS}", _I)
# Every agent word of `_AGENT_WORDS` (or a part of it), and "you ...": every match contains one. "ai" and "bot"
# occur inside common words too; the pattern gate (`security.gate`) rules the scan out of most clean results.
_ADDRESSED_ANCHORS = (
    "assistant",
    "ai",
    "bot",
    "mixtral",
    "command",
    "phi",
    *(f"o{digit}" for digit in range(10)),
    "agent",
    "model",
    "llm",
    "chatbot",
    "claude",
    "gpt",
    "copilot",
    "gemini",
    "llama",
    "mistral",
    "qwen",
    "deepseek",
    "grok",
    "you must",
    "you should",
    "you need",
    "you have",
    "you are to",
)
# Where `_ADDRESSED_RE` can start, for RE2 (see `security.prefilter`): a vocative right after punctuation (or
# at the text's start), "the <agent> must", "you must". Each agent word up to where it may go on.
_AGENT_START = (
    r"(?:assistant|ai|agent|model|llm|bot|chatbot|claude|chatgpt|copilot|gemini|gpt|llama|mistral|mixtral|qwen|"
    r"deepseek|command[- ]r|grok|phi|o[\d?])"
)
_AGENT_WHOLE = (
    r"(?:assistant|ai|agent|model|llm|bot|chatbot|claude|chatgpt|copilot|gemini|gpt[\w.?-]*|llama[\w.?-]*|mistral|"
    r"mixtral|qwen[\w.?-]*|deepseek|command[- ]r[\w+?-]*|grok|phi-?[\d?]|o[\d?](?:-mini)?)"
)
_VOCATIVE_START = rf"[ \t]*(?:hey{WS}+|dear{WS}+)?{_AGENT_START}"
_ADDRESSED = Prefilter(
    twin_of(_ADDRESSED_RE),  # run on the lower-cased text
    [
        (
            # The vocative's match starts after the punctuation (offset 1), the others where RE2's does (0).
            rf"[.!?\n>\"'\]]{_VOCATIVE_START}|^{_VOCATIVE_START}|\b(?:the{WS}+)?{_AGENT_WHOLE}{WS}+"
            rf"(?:should|must|need|has|is)|\byou{WS}+(?:must|should|need|have|are)",
            (0, 1),
        )
    ],
)


# An imperative at the start of a sentence or line (after punctuation, a quote or a bullet), run on the
# lower-cased text: starting with a character class lets the regex engine skip ahead quickly.
# The lookahead is a necessary condition of `_BODY` (its first word is a frame word, a polite word or a verb,
# each followed by a word boundary), checked in one pass of a word trie: most sentence starts fail there
# instead of trying the frame, politeness and verb alternatives one after another (about 1.5x faster, same
# matches).
_FIRST_WORD_TRIE = word_trie(
    sorted(
        set(_VERB_WORDS)
        | {"todo", "note", "task", "action", "instruction", "instructions"}
        | {"please", "kindly", "now", "then", "also", "first", "finally", "immediately", "do"}
    )
)
_DIRECTIVE_RE = re.compile(r"[.!?:;\n\"'>\]][ \t\n]*(?:[-*][ \t]*)?" + rf"(?=(?:{_FIRST_WORD_TRIE})\b)" + _BODY)
# RE2 finds where it can start (see `security.prefilter`): the same text up to the first word (scanned over
# the whole text, never in windows, so it may end in `\b`).
_DIRECTIVE = Prefilter(
    _DIRECTIVE_RE, [(r"[.!?:;\n\"'>\]][ \t\n]*(?:[-*][ \t]*)?" + rf"(?:{_FIRST_WORD_TRIE})\b", (0,))]
)
_DIRECTIVE_AT_START_RE = re.compile(r"[ \t\n]*(?:[-*][ \t]*)?" + _BODY)

# A destination the data is sent *to*: "to x@y.com", "to my new email address, x@y.com", "to IBAN ...".
_DESTINATION_RE = re.compile(
    r"\bto\s+(?:[^\s.]+\s+){0,6}?[:\s'\"`]*(?:[\w.+-]+@(?:[\w-]+\.)+[a-z]{2,}|https?://\S+|www\.[\w-]+\.\w|IBAN\b|"
    r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}\b)",
    _I,
)
_ADDRESS_RE = re.compile(
    r"[\w.+-]+@(?:[\w-]+\.)+[A-Za-z]{2,}|(?i:https?://)\S+|\b(?i:www)\.[\w-]+\.\w|\b[A-Z]{2}\d{2}[A-Z0-9]{10,30}\b"
)
_SENSITIVE_RE = re.compile(
    r"\b(?:passwords?|security\s+codes?|verification\s+codes?|2fa|otp|credit\s+card|card\s+numbers?|"
    r"passport|bank\s+account|iban|ssn|social\s+security|api\s+keys?|tokens?|private\s+keys?|"
    r"credentials?|user\s+information|personal\s+(?:information|data|details)|login\s+details|"
    r"phone\s+numbers?|id[\s_]number|ssh\s+keys?|id_rsa|id_ed25519|\.env|\.ssh|kubeconfig|wallet)\b",
    _I,
)
_BULK_RE = re.compile(
    r"\b(?:all|every|each|entire|whole)\s+(?:\w+\s+){0,3}?(?:e-?mails?|messages?|files?|documents?|contacts?|"
    r"events?|conversations?|history|inbox|data|records|channels?|users?|transactions?|persons?|people)\b",
    _I,
)
_SPEECH_RE = re.compile(
    r"^(?:say|tell|recommend)\b(?:\s+(?:the\s+user|me|him|her|them|everyone))?\s+that\b"
    r"|^tell\s+(?:the\s+)?(?:user|users|customer|everyone)\b",
    _I,
)
# Speaking as the user who owns the agent's resources ("my inbox", "my calendar", "I want"), not merely the
# sender of an e-mail asking "send me the numbers".
_FIRST_PERSON_RE = re.compile(
    r"\bmy\s+(?:\w+\s+)?(?:inbox|e-?mails?|calendar|cloud|drive|files?|account|contacts|messages|password|"
    r"card|passport|bank|documents?|wife|husband|friend|partner|family|channel|workspace|phone)\b"
    r"|\bI\s+(?:want|need|would\s+like)\b",
    re.IGNORECASE,
)
_MOVING_RE = re.compile(
    r"^(?:send|e-?mail|mail|forward|share|upload|post|publish|give|provide|include|disclose|reveal|tell|say|write|"
    r"get|retrieve|list|find|collect|copy|concatenate|reply|transfer|wire)\b",
    _I,
)
_THIRD_PARTY_RE = re.compile(r"\bthe\s+(?:user|assistant|ai|model|agent|llm)\b", _I)
_DESTRUCTIVE_RE = re.compile(r"^(?:delete|remove|erase|wipe|cancel|transfer|wire|pay)\b", _I)
_HIJACK_TAIL_RE = re.compile(r"\binstead\s*[.!]?\s*$", _I)


# The same searches on the lower-cased sentence (about 3x faster; see `rules.base.lower_twin`).
_SENSITIVE_LOW_RE, _THIRD_PARTY_LOW_RE, _BULK_LOW_RE = (twin_of(r) for r in (_SENSITIVE_RE, _THIRD_PARTY_RE, _BULK_RE))
# `_ADDRESS_RE` one alternative at a time, each behind a substring every match of it contains: whether any
# matches is whether one of them does, and most sentences contain none of '@', '://', 'www.' or a digit.
_ADDRESS_PARTS = _ADDRESS_RE.pattern.split("|")
assert len(_ADDRESS_PARTS) == 4
_EMAIL_RE, _URL_RE, _WWW_RE, _IBAN_LIKE_RE = (re.compile(part) for part in _ADDRESS_PARTS)
_DIGIT_RE = re.compile(r"\d")


def _names_address(rest: str, low_rest: str) -> bool:
    """`_ADDRESS_RE.search(rest) is not None`, faster."""
    return (
        ("@" in rest and _EMAIL_RE.search(rest) is not None)
        or ("://" in rest and _URL_RE.search(rest) is not None)
        or ("www." in low_rest and _WWW_RE.search(rest) is not None)
        or (_DIGIT_RE.search(rest) is not None and _IBAN_LIKE_RE.search(rest) is not None)
    )


def _has_destination(rest: str, low_rest: str) -> bool:
    """`_DESTINATION_RE.search(rest) is not None`, skipped when `rest` lacks what every match contains: 'to'
    and one of '@', '://', 'www.', 'ban' (of IBAN) or a digit. (No gate letter is one IGNORECASE also
    matches as another letter that lower() keeps, such as 'i' for U+0131.)"""
    if "to" not in low_rest:
        return False
    if not ("@" in rest or "://" in rest or "www." in low_rest or "ban" in low_rest or _DIGIT_RE.search(rest)):
        return False
    return _DESTINATION_RE.search(rest) is not None


def _points(
    sentence_from_verb: str, rest: str, framed: bool, addressed: bool | None, low_rest: str | None = None
) -> tuple[float, list[str]]:
    """Evidence points of one imperative sentence, with the reasons (see the module docstring). `low_rest`:
    `rest` lower-cased with the same length, when known."""
    reasons: list[str] = []
    points = 0.0
    if low_rest is None or len(low_rest) != len(rest):
        low = None
        dest = _DESTINATION_RE.search(rest) is not None
        address = _ADDRESS_RE.search(rest) is not None if not dest else False
    else:
        low = low_rest
        dest = _has_destination(rest, low)
        address = _names_address(rest, low) if not dest else False
    sensitive = (_SENSITIVE_RE.search(rest) if low is None else _SENSITIVE_LOW_RE.search(low)) is not None
    third_party = (_THIRD_PARTY_RE.search(rest) if low is None else _THIRD_PARTY_LOW_RE.search(low)) is not None
    bulk = (_BULK_RE.search(rest) if low is None else _BULK_LOW_RE.search(low)) is not None
    for ok, value, reason in (
        (dest, 0.5, "outside destination"),
        (address, 0.25, "names an address"),
        # Sensitive data weighs most when the verb moves it ("send the code"), less otherwise ("reset").
        (
            sensitive,
            0.5 if _MOVING_RE.match(sentence_from_verb) else 0.25,
            "sensitive data",
        ),
        (third_party, 0.25, "talks to the agent about the user"),
        (bulk, 0.5, "bulk scope"),
        (framed, 0.5, "task framing"),
        (addressed is not None, 0.5 if addressed else 0.25, "addressed to the agent"),
        (_SPEECH_RE.match(sentence_from_verb) is not None, 0.5, "dictates the answer"),
        (_FIRST_PERSON_RE.search(rest) is not None, 0.25, "speaks as the user"),
        (_DESTRUCTIVE_RE.match(sentence_from_verb) is not None, 0.25, "destructive or financial action"),
    ):
        if ok:
            points += value
            reasons.append(reason)
    return points, reasons


class EmbeddedDirectiveRule(RuleBase):
    """An imperative inside a tool result that orders the agent to act: injected instructions in data."""

    id = "SY701"
    title = "Instruction for the agent embedded in a tool result"
    severity = Severity.MEDIUM
    kinds = OUTPUT_KINDS
    doc = (
        "Finds imperative sentences inside a result (start of a sentence or line, optionally after "
        "'please' or a 'TODO:' marker) and grades them by aggravating signals: data sent to an outside "
        "address, sensitive data (passwords, security codes, card or passport numbers), bulk scope ('all "
        "unread e-mails'), task framing ('TODO:', '... instead.'), dictating the answer ('say that ...'): "
        "0.5 points each (sensitive data only when the verb moves it); naming an address at all, speaking as "
        "the user ('my calendar'), talking to the agent about 'the user', destructive or financial verbs: "
        "0.25. "
        "1+ point is high, 0.75 medium over the threshold, 0.5 medium, a bare imperative low."
    )
    why = (
        "Indirect prompt injection plants the attacker's task in content the agent reads (an e-mail, a "
        "review, a calendar entry) so that the agent executes it with the user's privileges."
    )
    fix = "Treat the result as data: annotate it as untrusted, or block it; do not act on instructions in it."

    def check(self, item: ScanItem, context: ScanContext) -> Iterator[Finding]:
        for key, text in item.fields.items():
            best: tuple[float, int, int, list[str]] | None = None
            low = lowered(text)
            same_length = len(low) == len(text)
            if not same_length:  # lower() changed lengths (rare letters): offsets would drift
                low = text
            first = _DIRECTIVE_AT_START_RE.match(low)
            # addressed: None = not addressed; True = names the agent ("Assistant, ..."); False = only "you must".
            directives = _DIRECTIVE.finditer(low) if same_length else _DIRECTIVE_RE.finditer(low)
            plain = ((m, None) for m in itertools.chain((first,) if first else (), directives))
            addressed_matches = (
                (m, _AGENT_NAMED_RE.search(text, m.start(), m.start("verb")) is not None)
                for m in windowed(_ADDRESSED_RE, text, _ADDRESSED_ANCHORS, 24, 400, lower=True, prefilter=_ADDRESSED)
            )
            for m, addressed in itertools.chain(plain, addressed_matches):
                cut = slice(m.start("rest"), min(m.end("rest"), m.start("rest") + 400))
                rest = text[cut]
                tail = text[m.end() : m.end() + 12]
                framed = m.groupdict().get("frame") is not None or _HIJACK_TAIL_RE.search(tail or rest) is not None
                low_rest = low[cut] if same_length else None
                points, reasons = _points(text[m.start("verb") : m.end()], rest, framed, addressed, low_rest)
                if best is None or points > best[0]:
                    best = (points, m.start("verb"), m.end(), reasons)
                if points >= 1.0:
                    break
            if best is None:
                continue
            points, start, end, reasons = best
            if points >= 1.0:
                severity, weight = Severity.HIGH, 1.0
            elif points >= 0.75:
                severity, weight = Severity.MEDIUM, 1.5
            elif points >= 0.5:
                severity, weight = Severity.MEDIUM, 1.0
            else:
                severity, weight = Severity.LOW, 1.0
            why = ", ".join(reasons) or "no aggravating signal"
            yield self.finding(
                item, key, start, end, f"imperative aimed at the agent ({why})", severity=severity, weight=weight
            )


# A tool name as injections write it: quoted or backticked, or an identifier with '_' or '-' inside.
_TOOL_NAME = r"(?:[`'\"][\w.-]+[`'\"]|(?!(?:the|this|that|a|an|with|to)\b)\w+[_-][\w-]+)"
_TOOL_CALL_RE = re.compile(
    rf"\b(?:you\s+(?:should|must|need\s+to|have\s+to)\s+)?(?:use|call|invoke|run|execute)\s+the\s+"
    rf"(?:tool|function)\s+{_TOOL_NAME}"
    rf"|\b(?:use|call|invoke)\s+(?:the\s+)?{_TOOL_NAME}\s+(?:tool|function)\s+(?:with|to)\b"
    r"|\bwith\s+the\s+(?:following\s+)?(?:arguments|parameters)\s*:?\s*[{(\[]"
    r"|\bsubstitute\s+the\s+placeholders\b",
    _I,
)


_BARE_CALL_RE = re.compile(r"\b(?:call|invoke)\s+[`'\"]?[a-z][a-z0-9]*_[a-z0-9_]+[`'\"]?\s*(?:\(|on|with|for|to)\b", _I)
_TOOL_CALL_ANCHORS = ("tool", "function", "arguments", "parameters", "placeholders")


class ToolCallInstructionRule(RuleBase):
    """A result that tells the agent which tool to call, and with which arguments."""

    id = "SY702"
    title = "Tool-call instruction in a tool result"
    severity = Severity.HIGH
    kinds = OUTPUT_KINDS
    doc = (
        "Flags results that script the agent's next tool calls: 'use the tool `send_email` ...', 'call the "
        "function X with ...', 'with the following arguments: {...}', 'substitute the placeholders' (high); "
        "a bare 'call delete_file on ...' naming a tool-like identifier is medium (API docs say that too). Data "
        "returned by a tool has no business choosing the agent's next call."
    )
    why = (
        "Injections that name the exact tool and arguments succeed far more often (AgentDojo's tool-knowledge attack)."
    )
    fix = "Block or annotate the result as untrusted; review which server produced it."

    def check(self, item: ScanItem, context: ScanContext) -> Iterator[Finding]:
        for key, text in item.fields.items():
            bare = next(windowed(_BARE_CALL_RE, text, ("call", "invoke"), 2, 120), None)
            if bare:  # "call delete_file on ...": a name that looks like a tool, without the word "tool"
                yield self.finding(
                    item, key, bare.start(), bare.end(), f"scripts a call: {bare.group(0)!r}", severity=Severity.MEDIUM
                )
            m = next(windowed(_TOOL_CALL_RE, text, _TOOL_CALL_ANCHORS, 70, 120), None)
            if m:
                yield self.finding(item, key, m.start(), m.end(), f"scripts a tool call: {m.group(0)!r}")
