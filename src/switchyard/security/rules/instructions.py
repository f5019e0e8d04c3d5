"""Rules for instructions addressed to the model hidden in metadata or data (tool poisoning, line jumping).

Owns: pseudo-tags that fake authority (`<IMPORTANT>`, `<system>`, `[SYSTEM]`, `###(system_message)`),
attempts to override the model's instructions, demands of secrecy from the user, and preconditions that
hijack the model's plan ("before using this tool, read ..."). These apply to definitions and to tool results.
Does not own: what the hidden instruction asks for (files, exfiltration: `rules.exfil`; parameters:
`rules.params`) — the scorer combines those signals.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from switchyard.security.engine import ScanContext
from switchyard.security.model import Finding, ScanItem, Severity
from switchyard.security.prefilter import WS, Prefilter
from switchyard.security.rules.base import ALL_KINDS, RuleBase, lowered, prose_matches, twin_of

__all__ = ["MODEL_WORDS", "InstructionOverrideRule", "PseudoTagRule", "SecrecyRule"]

_I = re.IGNORECASE

# Generic words for the model and the names of common model families (injections address it by name).
MODEL_WORDS = (
    r"(?:ai|llm|model|assistant|agent|gpt(?:-?\d[\w.-]*)?|claude|gemini|chatgpt|copilot|language model|"
    r"llama[\w.-]*|mistral|mixtral|qwen[\w.-]*|deepseek|command[- ]r[\w+-]*|grok|phi-?\d|o\d(?:-mini)?)"
)


_STRONG_TAGS = (
    r"system|system[ _-]?(?:message|prompt|override|instructions?)|hidden(?:[ _-]instructions?)?|secret|admin|"
    r"override|developer|root|jailbreak|assistant|instructions?|ai[ _-]?instructions?|note[ _-]?to[ _-]?(?:ai|llm)"
)
_WEAK_TAGS = r"important|information|info|critical|note|context|requirements?|metadata|directive|warning|priority"

_PSEUDO_TAG_RE = re.compile(
    rf"</?\s*(?P<strong>{_STRONG_TAGS})\s*>"
    rf"|</?\s*(?P<weak>{_WEAK_TAGS})\s*>"
    r"|\[\s*(?P<bracket>(?:system|hidden|secret|admin|override|important|critical)[\w ]{0,24}|[\w ]{0,24}"
    r"(?:directive|instructions?))\s*\]\s*:?"
    # '###(system_message)'; a markdown heading such as '## Important' is not a marker.
    r"|#{2,}\s*(?:\(\s*(?P<hash>system[ _]?(?:message|prompt)?|instructions?|important)\s*\)|"
    r"system[ _](?:message|prompt)\b)"
    r"|(?P<chat><\|(?:im_start|im_end|system|user|assistant|endoftext)\|>|\[/?INST\]|<</?SYS>>)"
    r"|(?m-i:^[ \t>*#-]*(?P<line>SYSTEM|SYSTEM PROMPT|ADMIN|DEVELOPER|ASSISTANT|"
    r"(?:[A-Z]+ )?(?:OVERRIDE|DIRECTIVE|INSTRUCTIONS?)(?: [A-Z]+)?)\s*:)"
    r"|(?P<bang>IMPORTANT\s*!{2,}|ATTENTION\s*!{2,})",
    _I,
)


# Every alternative of the pattern contains one of these words (tag names, chat-token pieces).
# Every alternative of the pattern contains one of these (lower-case) pieces: a tag name with its '>', a
# bracket or heading opener with its word, a chat-token piece, or a header word.
_TAG_WORDS = (
    "system",
    "message",
    "prompt",
    "override",
    "instruction",
    "instructions",
    "hidden",
    "secret",
    "admin",
    "developer",
    "root",
    "jailbreak",
    "assistant",
    "ai",
    "llm",
    "important",
    "information",
    "info",
    "critical",
    "note",
    "context",
    "requirement",
    "requirements",
    "metadata",
    "directive",
    "warning",
    "priority",
)
_TAG_LT_ANCHORS = (*(f"{w}>" for w in _TAG_WORDS), "<|", "<<")
_TAG_BRACKET_ANCHORS = (
    *(f"[{w}" for w in ("system", "hidden", "secret", "admin", "override", "important", "critical")),
    "directive]",
    "instruction]",
    "instructions]",
    "inst]",
)
_TAG_OTHER_ANCHORS = (
    "##",
    "system:",
    "admin:",
    "developer:",
    "assistant:",
    "override",
    "directive",
    "instruction",
    "important!",
    "attention!",
)


def _tag_anchors(item: ScanItem) -> tuple[str, ...]:
    """The anchors worth looking for: tag forms only if the text has a '<', bracket forms only with a '['."""
    values = list(item.fields.values())
    sample = lowered(values[0]) if len(values) == 1 else " ".join(values)
    anchors = _TAG_OTHER_ANCHORS
    if "<" in sample:
        anchors += _TAG_LT_ANCHORS
    if "[" in sample:
        anchors += _TAG_BRACKET_ANCHORS
    return anchors


# An HTML/markdown comment (invisible when rendered) that talks to the model or gives orders.
_COMMENT_RE = re.compile(
    rf"<!--(?:(?!-->)[\s\S]){{0,200}}?\b(?:{MODEL_WORDS}|instructions?|ignore|system|you\s+(?:must|should))\b", _I
)
_SYSTEM_CHANNEL_RE = re.compile(r"system|<</?sys>>|!!", _I)


class PseudoTagRule(RuleBase):
    """Markup that imitates a higher-authority channel: `<IMPORTANT>`, `<system>`, `[SYSTEM]`, chat tokens."""

    id = "SY101"
    title = "Pseudo-tag imitating a system or priority channel"
    severity = Severity.MEDIUM
    kinds = ALL_KINDS
    doc = (
        "Flags tags and markers that a human reader takes for formatting but a model may take for a "
        "privileged instruction channel: XML-like tags (<IMPORTANT>, <system>, <INFORMATION>), bracketed "
        "headers ([SYSTEM], [HIDDEN INSTRUCTION], [... DIRECTIVE]), '###(system_message)', chat-template "
        "tokens (<|im_start|>, [INST]), and upper-case headers at the start of a line ('SYSTEM:', "
        "'INSTRUCTION OVERRIDE:'), and HTML comments (invisible when rendered) that address the model or give "
        "orders. Two or more distinct strong markers weigh more. Markdown emphasis such as "
        "'**Important:**' is not flagged."
    )
    why = (
        "Tool poisoning payloads wrap their instructions in tags that raise their apparent authority, so the "
        "model follows them over the user's request; users never see these descriptions in most clients."
    )
    fix = "Remove the markup; a description should describe the tool, not instruct the model with priority tags."

    def check(self, item: ScanItem, context: ScanContext) -> Iterator[Finding]:
        strong_markers: set[str] = set()
        for key, start, end, m in prose_matches(item, _PSEUDO_TAG_RE, _tag_anchors(item), 40, 60):
            # Chat-template tokens are one kind of marker however many of them appear.
            marker = "chat" if m.group("chat") else m.group(0).strip().strip("<>/[]:# ").lower()
            strong = m.group("weak") is None
            weight = 1.0 if strong else 0.75
            if item.kind == "tool_output" and _SYSTEM_CHANNEL_RE.search(m.group(0)):
                weight = 1.5  # data has no system channel: a fake one in a result exists to fool a model
            if strong and marker not in strong_markers:
                strong_markers.add(marker)
                if len(strong_markers) >= 2:
                    weight = 1.5  # several distinct authority markers: a payload, not formatting
            yield self.finding(item, key, start, end, f"pseudo-tag {m.group(0).strip()!r}", weight=weight)
        for key, start, end, m in prose_matches(item, _COMMENT_RE, ("<!--",), 0, 260, lower=True):
            yield self.finding(item, key, start, end, f"hidden comment {m.group(0)[:60]!r}")


_OVERRIDE_RE = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass|skip)\s+(?:all\s+|any\s+|the\s+|your\s+|my\s+|of\s+)*"
    r"(?:previous|prior|above|earlier|preceding|original|former|existing|other|system|safety|default)\s+"
    # Misspelt on purpose by attackers to dodge filters ("iunstructions"): match the word's core.
    r"\w*(?:str[uc]+t|direct|prompt|rule|guideline|command|task|order|context)\w*"
    r"|\bnew\s+(?:system\s+)?instructions?\s*:"
    r"|\byou\s+are\s+now\s+(?:a|an|in|the)\b"
    r"|\bact\s+as\s*:"
    rf"|\b(?:override|replace|ignore)\s+(?:the\s+)?(?:default\s+)?(?:{MODEL_WORDS}\s+)?(?:system\s+prompt|safety|"
    r"content\s+filter(?:ing)?|guardrails?)"
    r"|\b(?:disable|turn\s+off|bypass)\s+(?:all\s+)?(?:the\s+)?(?:content\s+filter(?:ing)?|safety\s+"
    r"(?:checks?|filters?|guidelines)|security\s+checks?|guardrails?)",
    _I,
)


_WEAKEN_RE = re.compile(
    r"\b(?:ignore|skip|bypass\w*|disable|turn\s+off|without)\s+(?:all\s+|any\s+)?(?:the\s+)?(?:\w+\s+)?"
    r"(?:security|validation|sanitization|sanitisation|safety|content)\s+"
    r"(?:checks?|polic(?:y|ies)|validation|filter(?:s|ing)?|rules|controls?)"
    r"|\b(?:trust|accept|allow)\s+all\s+(?:user\s+)?(?:input|queries|requests|content)",
    _I,
)


_OVERRIDE_ANCHORS = (
    "ignore",
    "disregard",
    "forget",
    "override",
    "bypass",
    "skip",
    "new ",
    "you are now",
    "act as",
    "replace",
    "disable",
    "turn off",
)
_WEAKEN_ANCHORS = ("ignore", "skip", "bypass", "disable", "turn off", "without", "trust", "accept", "allow")


# Where `_OVERRIDE_RE` and `_SECRECY_RE` can start, for RE2 on the lower-cased text (see `security.prefilter`):
# each alternative's words up to the first whitespace run that must follow.
_OVERRIDE_PREFILTER = Prefilter(
    twin_of(_OVERRIDE_RE),
    [
        (
            rf"\b(?:ignore|disregard|forget|override|bypass|skip|replace|disable|new){WS}|\bturn{WS}+off{WS}"
            rf"|\byou{WS}+are{WS}+now|\bact{WS}+as",
            (0,),
        )
    ],
)


class InstructionOverrideRule(RuleBase):
    """Attempts to replace the model's instructions: "ignore previous instructions", "you are now ..."."""

    id = "SY102"
    title = "Attempt to override the model's instructions"
    severity = Severity.HIGH
    kinds = ALL_KINDS
    doc = (
        "Flags phrases that try to cancel or replace the instructions the model runs under: 'ignore (all) "
        "previous instructions', 'disregard prior rules', 'new instructions:', 'you are now a ...', "
        "'override the system prompt', 'disable content filtering / safety checks' (high); and, at medium, "
        "directives that weaken checks: 'skip all validation', 'without security checks', 'trust all input' "
        "(in definitions only: in results these words are everyday prose)."
    )
    why = "This is the core move of prompt injection: text from a tool takes over the agent's goal."
    fix = "Remove the text. If it arrived in a tool result, treat the result as untrusted data, not instructions."

    def check(self, item: ScanItem, context: ScanContext) -> Iterator[Finding]:
        found = prose_matches(item, _OVERRIDE_RE, _OVERRIDE_ANCHORS, 2, 160, lower=True, prefilter=_OVERRIDE_PREFILTER)
        for key, start, end, m in found:
            yield self.finding(item, key, start, end, f"override phrase {m.group(0)!r}")
        if item.kind == "tool_output":
            return  # results: only outright overrides; weakening words ("without", "allow") are everyday prose
        for key, start, end, m in prose_matches(item, _WEAKEN_RE, _WEAKEN_ANCHORS, 2, 120, lower=True):
            yield self.finding(
                item,
                key,
                start,
                end,
                f"security-weakening directive {m.group(0)!r}",
                severity=Severity.MEDIUM,
            )


_USER = r"(?:the\s+|your\s+|this\s+)?(?:user|human|person|customer|operator|client)s?"
_SECRECY_RE = re.compile(
    r"\b(?:do\s+not|don'?t|never|must\s+not|should\s+not|shouldn'?t|no\s+need\s+to|not\s+necessary\s+to)\s+"
    r"(?:\w+\s+){0,2}?(?:tell|mention|inform|reveal|disclose|notify|alert|show|explain|say|report|warn)\w*\s+"
    rf"(?:(?:this|that|it|anything|about\s+\w+)\s+)?(?:to\s+)?{_USER}"
    rf"|\bwithout\s+(?:\w+\s+){{0,2}}?(?:telling|informing|notifying|alerting|asking|mentioning\s+it\s+to|"
    rf"the\s+knowledge\s+of)\s+{_USER}"
    rf"|\b{_USER}\s+(?:must|should|need)\s+not\s+(?:know|see|notice|be\s+(?:told|informed|aware))"
    r"|\b(?:the\s+|your\s+)?(?:user|human)s?\s+(?:does|do|will|would|must|should)\s*(?:n'?t|\s+not)\s+"
    r"(?:need\s+to\s+|have\s+to\s+)?"
    r"(?:know|see|notice|be\s+(?:told|informed|aware))"
    r"|\b(?:this\s+is\s+a|it\s+is\s+a)\s+(?:secret|confidential|hidden)\s+(?:operation|step|instruction|action)"
    rf"|\bkeep\s+(?:this|it|that)\s+(?:hidden|secret|confidential)\s+from\s+{_USER}"
    r"|\b(?:silently|covertly|secretly|quietly)\s+(?:\w+\s+)?(?:send|forward|copy|read|upload|include|add|"
    r"append|pass|attach|exfiltrate|collect|log|bcc|execute|run)",
    _I,
)


# Every alternative has a negation, "without", "keep", a secrecy word or a covert adverb.
_SECRECY_ANCHORS = (
    "not ",
    "n't ",
    "never",
    "no need",
    "without",
    "secret",
    "confidential",
    "hidden",
    "keep",
    "silently",
    "covertly",
    "quietly",
)


_WHO = r"(?:user|human|person|customer|operator|client)"
_SECRECY_PREFILTER = Prefilter(
    twin_of(_SECRECY_RE),
    [
        (
            rf"\b(?:do{WS}+not|don'?t|never|must{WS}+not|should{WS}+not|shouldn'?t|no{WS}+need{WS}+to|"
            rf"not{WS}+necessary{WS}+to){WS}|\bwithout{WS}|\b(?:(?:the|your|this){WS}+)?{_WHO}s?{WS}+"
            rf"(?:must|should|need|does|do|will|would)|\b(?:this|it){WS}+is{WS}+a{WS}|\bkeep{WS}"
            rf"|\b(?:silently|covertly|secretly|quietly){WS}",
            (0,),
        )
    ],
)


_SECRECY_NAMED_RE = re.compile(
    r"\b(?:do\s+not|don'?t|never)\s+(?:tell|mention|inform|reveal|disclose|notify|alert)\w*\s+"
    r"(?:(?:this|that|it|anything)\s+)?(?:to\s+)?(?-i:[A-Z][a-z]+)\b",
    _I,
)
_SECRECY_NAMED_ANCHORS = ("not ", "n't ", "never ")


class SecrecyRule(RuleBase):
    """Demands that the model hide what it does from the user."""

    id = "SY103"
    title = "Instruction to keep something from the user"
    severity = Severity.HIGH
    kinds = ALL_KINDS
    doc = (
        "Flags instructions to keep the user uninformed: 'do not mention this to the user', 'without "
        "telling the user', 'the user must not know', 'this is a secret operation', 'silently send ...'."
    )
    why = (
        "A legitimate tool has no reason to ask the model to hide its actions; secrecy is how poisoned "
        "descriptions keep the user from noticing a file read or a redirected e-mail."
    )
    fix = "Remove the instruction; the tool's behaviour must be visible to the user."

    def check(self, item: ScanItem, context: ScanContext) -> Iterator[Finding]:
        found = prose_matches(item, _SECRECY_RE, _SECRECY_ANCHORS, 60, 120, lower=True, prefilter=_SECRECY_PREFILTER)
        for key, start, end, m in found:
            yield self.finding(item, key, start, end, f"secrecy demand {m.group(0)!r}")
        for key, start, end, m in prose_matches(item, _SECRECY_NAMED_RE, _SECRECY_NAMED_ANCHORS, 4, 60):
            # Keeping something from a named person is also ordinary ("don't tell Mom about the party").
            yield self.finding(item, key, start, end, f"secrecy demand {m.group(0)!r}", severity=Severity.MEDIUM)
