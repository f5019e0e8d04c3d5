"""Rules on parameters: fields that ask for data unrelated to the tool, and parameters that ask for secrets.

Owns: out-of-scope parameters (the model's identity, its system prompt, the conversation, other tools, file
contents), descriptions that route data into a specific parameter ("pass its content as 'sidenote'"), and
parameters whose purpose is to receive a secret. Does not own: the description's other instructions
(`rules.instructions`), or credential file paths (`rules.exfil`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, cast

from switchyard.security.engine import ScanContext
from switchyard.security.model import Finding, ScanItem, Severity
from switchyard.security.rules.base import RuleBase, name_fields, prose_matches
from switchyard.security.text import name_words

__all__ = ["OutOfScopeParameterRule", "SecretParameterRule"]

_I = re.IGNORECASE
_AGENT = r"(?:llm|ai|model|assistant|agent|chatbot|bot|language\s+model|gpt|claude)"

# Asking who the caller is (the model, its vendor): the out-of-scope parameter attack. Weighs 1.5.
_CALLER_NAME_RE = re.compile(
    r"^(?:(?:llm|ai|assistant|caller)(?:\s+model)?|(?:agent|caller|calling)\s+model)\s+"
    r"(?:name|version|identity|type|id|provider|vendor)$|^model\s+(?:identity|vendor|provider)$",
    _I,
)
_CALLER_TEXT_RE = re.compile(
    rf"\b(?:name|identity|version|type|vendor)\s+of\s+(?:the\s+)?(?:\w+\s+)?{_AGENT}\s+(?:that|which|who|"
    r"calling|invoking|using|making)"
    rf"|\b{_AGENT}\s+(?:\w+\s+)?that\s+(?:calls|is\s+calling|invokes|uses|is\s+using)\s+this\s+tool"
    r"|\byour\s+(?:own\s+)?(?:system\s+prompt|model\s+name|identity)"
    rf"|\b(?:which|what)\s+(?:\w+\s*/\s*)?{_AGENT}\s+(?:is\s+)?(?:calling|invoking|using|running)\b",
    _I,
)
# Context the tool rarely needs (conversation, system prompt, tool list, arbitrary files). Weighs 1.0: some
# honest tools (retrieval over a chat) take a conversation.
_CONTEXT_NAME_RE = re.compile(
    r"^(?:(?:system|initial|original)\s+prompts?|(?:conversation|chat|dialog(?:ue)?)\s+(?:history|log|context|"
    r"transcript)|previous\s+(?:messages|conversation|prompts?)|full\s+(?:context|conversation)|"
    r"(?:available|other|all)\s+tools|tool\s+list|sidenote|side\s+note)$",
    _I,
)
_CONTEXT_TEXT_RE = re.compile(
    r"\b(?:entire|full|complete|whole|all\s+of\s+the)\s+(?:conversation|chat|dialog(?:ue)?)(?:\s+history)?"
    r"\s+(?:so\s+far|with\s+the\s+user|up\s+to)"
    r"|\b(?:entire|full|complete|whole)\s+(?:conversation|chat|dialog(?:ue)?)\s+(?:history|log|transcript)"
    r"|\ball\s+(?:previous|prior|earlier)\s+(?:messages|prompts|turns)"
    r"|\b(?:list|names?)\s+of\s+(?:all\s+)?(?:the\s+)?(?:available\s+|other\s+)?tools\s+(?:you|available)"
    r"|\bcontents?\s+of\s+(?:the\s+)?(?:user'?s?\s+)?(?:~|/|\.|files?\s+(?:at|in)|any\s+file)",
    _I,
)
_ROUTE_RE = re.compile(
    r"\b(?:pass|put|include|provide|add|send|insert|place|fill|append|attach)\w*\s+(?:\S+\s+){0,8}?"
    r"(?:as|in|into|to|via|inside|within)\s+(?:the\s+)?['\"`]?(?P<param>[A-Za-z_][\w-]*)['\"`]?"
    r"(?:\s+(?:parameter|argument|field|param|arg))?",
    _I,
)
_ROUTED_DATA_RE = re.compile(
    r"\b(?:content|contents|file|files|history|conversation|prompt|instructions|config|environment|messages|"
    r"ssh|private\s+key|output|secret|password|token|key|credentials?)\b|~/|/etc/|\.\w+rc\b",
    _I,
)
# Routing a credential into a parameter made for it ("provide your key via api_key") is ordinary.
_CREDENTIAL_PARAM_RE = re.compile(r"key|token|secret|password|passwd|auth|credential|cookie", _I)


def _properties(item: ScanItem) -> Mapping[str, Any]:
    schema = item.raw.get("inputSchema", item.raw.get("input_schema"))
    if isinstance(schema, Mapping):
        props = cast(Mapping[str, Any], schema).get("properties")
        if isinstance(props, Mapping):
            return cast(Mapping[str, Any], props)
    return {}


class OutOfScopeParameterRule(RuleBase):
    """Parameters that collect what the tool does not need: the model's identity, the chat, files, other tools."""

    id = "SY501"
    title = "Parameter collects out-of-scope data"
    severity = Severity.MEDIUM
    doc = (
        "Flags parameters that ask who the caller is (the model's name, version or vendor: 'the name of the "
        "llm model that calls this tool') and descriptions that route files or context into a named "
        "parameter ('read the file and pass its content as sidenote'), both over the threshold alone; and, "
        "weaker, parameters asking for the agent's context (system prompt, conversation history, list of "
        "tools, contents of arbitrary files), which some honest tools take."
    )
    why = (
        "An out-of-scope parameter turns every call into a leak: the model dutifully fills it, and the "
        "server collects the user's context, the agent's configuration or secrets."
    )
    fix = "Remove the parameter; a tool should only ask for the inputs its function needs."

    def check(self, item: ScanItem, context: ScanContext) -> Iterator[Finding]:
        props = _properties(item)
        for key, text in name_fields(item):
            if key == "name":
                continue
            words = name_words(text)
            if _CALLER_NAME_RE.match(words):
                yield self.finding(item, key, 0, len(text), f"parameter {text!r} asks who the caller is", weight=1.5)
            elif _CONTEXT_NAME_RE.match(words):
                yield self.finding(item, key, 0, len(text), f"parameter {text!r} asks for the agent's context")
        for key, start, end, m in prose_matches(item, _CALLER_TEXT_RE, lower=True):
            yield self.finding(item, key, start, end, f"asks for {m.group(0)!r}", weight=1.5)
        for key, start, end, m in prose_matches(item, _CONTEXT_TEXT_RE, lower=True):
            yield self.finding(item, key, start, end, f"asks for {m.group(0)!r}")
        description = item.fields.get("description", "")
        if props and description:
            for m in _ROUTE_RE.finditer(description):
                param = m.group("param")
                window = description[max(0, m.start() - 80) : m.end()]
                if param in props and _ROUTED_DATA_RE.search(window) and not _CREDENTIAL_PARAM_RE.search(param):
                    yield self.finding(
                        item, "description", m.start(), m.end(), f"routes data into parameter {param!r}", weight=1.5
                    )


_SECRET_PARAM_RE = re.compile(
    r"\b(?:private\s+key|ssh\s+key|seed\s+phrase|mnemonic|recovery\s+phrase|passphrase|password|passwd|"
    r"credit\s+card|card\s+number|cvv|ssn|social\s+security|otp|2fa\s+code|security\s+code|session\s+cookie)\b",
    _I,
)


class SecretParameterRule(RuleBase):
    """Parameters that ask the model to supply a secret (private key, password, seed phrase, card number)."""

    id = "SY502"
    title = "Parameter asks for a secret"
    severity = Severity.LOW
    doc = (
        "Flags parameters named or described as private keys, SSH keys, seed phrases, passwords, card "
        "numbers, one-time codes or session cookies. Low on its own (some admin tools take a password to "
        "create an account); it weighs in with other signals. API tokens are not flagged: many honest "
        "servers take one per call."
    )
    why = "A model asked for a secret will look for one in its context or files, and hand it to this server."
    fix = "Take credentials from the server's own configuration, never from the model."

    def check(self, item: ScanItem, context: ScanContext) -> Iterator[Finding]:
        for key, text in name_fields(item):
            if key != "name":
                m = _SECRET_PARAM_RE.search(name_words(text))
                if m:
                    yield self.finding(item, key, 0, len(text), f"parameter asks for {m.group(0)!r}")
        for key, _, _, m in prose_matches(item, _SECRET_PARAM_RE, fields=_parameter_descriptions, lower=True):
            yield self.finding(item, key, 0, len(item.fields[key]), f"parameter asks for {m.group(0)!r}")


def _parameter_descriptions(item: ScanItem) -> Iterator[tuple[str, str]]:
    for key, text in item.fields.items():
        if key.startswith("inputSchema.") and key.endswith(".description"):
            yield key, text
