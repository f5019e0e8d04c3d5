"""Rules for tool results only: instructions for the agent embedded in data (indirect prompt injection).

Owns: imperative sentences inside a result that order the agent to act on the user's data (send, forward,
delete, pay, book) especially towards an outside address or over sensitive or bulk data; instructions to call
specific tools with given arguments; and task-hijack framing ("TODO: ...", "... instead.", "say that ...").
Does not own: override phrases, pseudo-tags and secrecy demands, which apply to definitions too
(`rules.instructions`), nor secrets (`rules.exfil`).

Results legitimately contain imperatives ("please ignore this e-mail", "click the link below"), so a bare
imperative is low; it becomes medium or high only with a destination, a sensitive object or bulk scope.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from switchyard.security.engine import ScanContext
from switchyard.security.model import Finding, ScanItem, Severity
from switchyard.security.rules.base import OUTPUT_KINDS, RuleBase

__all__ = ["EmbeddedDirectiveRule", "ToolCallInstructionRule"]

_I = re.IGNORECASE

_VERBS = (
    r"send|e-?mail|forward|transfer|wire|pay|delete|remove|erase|share|upload|post|publish|make|create|book|"
    r"reserve|schedule|invite|add|change|update|reset|say|tell|recommend|visit|get|give|provide|include|"
    r"reply|write|grant|download|install|run|execute|retrieve|summari[sz]e|insert|rename|move|copy|"
    r"cancel|modify|set|disclose|reveal|list|find|collect|concatenate|follow"
)
# An imperative at the start of a sentence or line, optionally after a politeness word or a framing marker.
_DIRECTIVE_RE = re.compile(
    r"(?:^|(?<=[.!?:;\n\"'>\]])\s*|(?<=\n)\s*[-*]?\s*)"
    r"(?P<frame>(?:TODO|NOTE|TASK|ACTION(?:\s+REQUIRED)?|INSTRUCTIONS?)\s*:\s*)?"
    r"(?:(?:please|kindly|now|then|also|first|finally|immediately|do)\s*,?\s+)*"
    rf"(?P<verb>{_VERBS})\b(?P<rest>[^.!?\n]{{0,300}})",
    _I,
)
_DESTINATION_RE = re.compile(
    r"[\w.+-]+@(?:[\w-]+\.)+[a-z]{2,}|https?://\S+|\bIBAN\b|\b[A-Z]{2}\d{2}[A-Z0-9]{10,30}\b|\bwebhook\b",
    _I,
)
_SENSITIVE_RE = re.compile(
    r"\b(?:passwords?|security\s+codes?|verification\s+codes?|2fa|otp|credit\s+card|card\s+numbers?|"
    r"passport|bank\s+account|iban|ssn|social\s+security|api\s+keys?|tokens?|private\s+keys?|"
    r"credentials?|user\s+information|personal\s+(?:information|data|details)|login\s+details|"
    r"(?:home\s+)?address(?:es)?\s+and|phone\s+numbers?|id[\s_]number)\b",
    _I,
)
_BULK_RE = re.compile(
    r"\b(?:all|every|each|entire|whole)\s+(?:\w+\s+){0,3}?(?:e-?mails?|messages?|files?|documents?|contacts?|"
    r"events?|conversations?|history|inbox|data|records|channels?|users?|transactions?)\b",
    _I,
)
_SPEECH_RE = re.compile(r"^(?:say|tell|recommend)\b(?:\s+(?:the\s+user|me|him|her|them|everyone))?\s+that\b", _I)
_HIJACK_TAIL_RE = re.compile(r"\binstead\s*[.!]?\s*$", _I)


class EmbeddedDirectiveRule(RuleBase):
    """An imperative inside a tool result that orders the agent to act: injected instructions in data."""

    id = "SY701"
    title = "Instruction for the agent embedded in a tool result"
    severity = Severity.MEDIUM
    kinds = OUTPUT_KINDS
    doc = (
        "Finds imperative sentences inside a result (start of a sentence or line, optionally after "
        "'please' or a 'TODO:' marker) and grades them: with an outside destination (e-mail address, URL, "
        "IBAN) and sensitive data (passwords, security codes, card or passport numbers) or bulk scope ('all "
        "unread e-mails'): high; with one of those, or framed by 'TODO:' or ending in 'instead.', or telling "
        "the agent what to say ('say that ...'): medium; a bare imperative: low."
    )
    why = (
        "Indirect prompt injection plants the attacker's task in content the agent reads (an e-mail, a "
        "review, a calendar entry) so that the agent executes it with the user's privileges."
    )
    fix = "Treat the result as data: annotate it as untrusted, or block it; do not act on instructions in it."

    def check(self, item: ScanItem, context: ScanContext) -> Iterator[Finding]:
        for key, text in item.fields.items():
            best: tuple[int, float, int, int, str] | None = None
            for m in _DIRECTIVE_RE.finditer(text):
                sentence = m.group(0)
                rest = m.group("rest")
                dest = _DESTINATION_RE.search(rest) is not None
                sensitive = _SENSITIVE_RE.search(rest) is not None
                bulk = _BULK_RE.search(rest) is not None
                framed = m.group("frame") is not None or _HIJACK_TAIL_RE.search(
                    text[m.end() : m.end() + 12] if m.end() < len(text) else rest
                ) is not None
                speech = _SPEECH_RE.match(sentence[m.start("verb") - m.start() :]) is not None
                if dest and (sensitive or bulk):
                    grade = (2, 1.2, "directs the user's data to an outside destination")
                elif dest or sensitive or bulk or framed or speech:
                    grade = (1, 1.0, "directs the agent to act")
                else:
                    grade = (0, 1.0, "imperative sentence in data")
                if best is None or grade[0] > best[0]:
                    best = (grade[0], grade[1], m.start("verb"), m.end(), grade[2])
                if best[0] == 2:
                    break
            if best is not None:
                level, weight, start, end, message = best
                severity = (Severity.LOW, Severity.MEDIUM, Severity.HIGH)[level]
                yield self.finding(item, key, start, end, message, severity=severity, weight=weight)


_TOOL_CALL_RE = re.compile(
    r"\b(?:you\s+(?:should|must|need\s+to|have\s+to)\s+)?(?:use|call|invoke|run|execute)\s+the\s+"
    r"(?:tool|function)\s+[`'\"]?\w+"
    r"|\b(?:use|call|invoke)\s+[`'\"]?\w+[`'\"]?\s+(?:tool|function)\s+(?:with|to)\b"
    r"|\bwith\s+the\s+(?:following\s+)?(?:arguments|parameters)\s*:?\s*[{(\[]"
    r"|\bsubstitute\s+the\s+placeholders\b",
    _I,
)


class ToolCallInstructionRule(RuleBase):
    """A result that tells the agent which tool to call, and with which arguments."""

    id = "SY702"
    title = "Tool-call instruction in a tool result"
    severity = Severity.HIGH
    kinds = OUTPUT_KINDS
    doc = (
        "Flags results that script the agent's next tool calls: 'use the tool `send_email` ...', 'call the "
        "function X with ...', 'with the following arguments: {...}', 'substitute the placeholders'. Data "
        "returned by a tool has no business choosing the agent's next call."
    )
    why = "Injections that name the exact tool and arguments succeed far more often (AgentDojo's tool-knowledge attack)."
    fix = "Block or annotate the result as untrusted; review which server produced it."

    def check(self, item: ScanItem, context: ScanContext) -> Iterator[Finding]:
        for key, text in item.fields.items():
            m = _TOOL_CALL_RE.search(text)
            if m:
                yield self.finding(item, key, m.start(), m.end(), f"scripts a tool call: {m.group(0)!r}")
