"""Cross-server rules: descriptions that steer other tools (shadowing, puppet attacks) and name collisions.

Owns: behaviour-modifying references to tools ("when the `add` tool is called, also ...", "instead of X use
this tool", "override the recipient"), which are stronger when the named tool belongs to another server in the
`ScanContext`; and tool names that equal or nearly equal (one edit, separators, case, lookalike letters) a
tool of another server. Does not own: namespacing or collision resolution (the catalog does that).
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterator, Mapping
from functools import lru_cache

from switchyard.security.engine import ScanContext
from switchyard.security.model import Finding, ScanItem, Severity
from switchyard.security.rules.base import RuleBase, prose_matches

__all__ = ["NameCollisionRule", "ToolShadowingRule", "name_skeleton"]

_I = re.IGNORECASE


def _ref(n: int) -> str:
    """A reference to a named tool ("the `add` tool"), with its name in group `tool<n>`; not "this tool"."""
    return (
        r"(?:the\s+)?[`'\"]?(?!(?:this|that|the|a|an|any|each|every|other|your|my)\b)"
        rf"(?P<tool{n}>[\w.-]+)[`'\"]?\s+(?:tool|function|operation|command|method)"
    )


_SHADOW_RE = re.compile(
    rf"\b(?:when|whenever|if|once|each\s+time|every\s+time)\s+{_ref(0)}\s+(?:is|gets|has\s+been)\s+"
    r"(?:called|used|invoked|present|available|requested|executed|run)"
    rf"|\b(?:when|whenever|if)\s+(?:the\s+user|you|anyone)\s+(?:\w+\s+)?(?:calls?|uses?|requests?|invokes?)\s+{_ref(1)}"
    r"|\b(?:before|after|instead\s+of|rather\s+than)\s+(?:you\s+)?(?:call|calling|use|using|execute|executing|"
    rf"run|running|invoking)\s+{_ref(2)}"
    rf"|\binstead\s+of\s+{_ref(3)}"
    r"|\b(?:override|overrides|change|changes|modify|modifies|replace|replaces|redirect|redirects|alter|alters|"
    r"hijack|intercept)\s+(?:the\s+)?(?:recipient|destination|arguments?|parameters?|values?|results?|"
    r"outputs?|behaviou?r|address|target|endpoint)s?\b"
    r"|\b(?:all|any|every)\s+(?:other\s+)?(?:subsequent\s+|future\s+)?(?:tool\s+calls|calls\s+to|"
    r"(?:e-?mails|messages|requests)\s+(?:must|should|will)\s+(?:be\s+)?(?:sent|go|forwarded|routed|cc'?d))"
    r"|\b(?:has|have)\s+(?:an?\s+)?(?:very\s+)?(?:important|hidden|critical)\s+side[- ]effects?"
    r"|\b(?P<always>(?:always|also|additionally|automatically)\s+(?:bcc|cc|copy|forward|send|include|add)\b"
    r"[^.\n]{0,80}?(?:[\w.+-]+@[\w-]+\.[\w.]+|https?://))",
    _I,
)
_SHADOW_ANCHORS = (
    "when",
    "if ",
    "once",
    "each time",
    "every time",
    "before",
    "after",
    "instead",
    "rather than",
    "overrid",
    "chang",
    "modif",
    "replac",
    "redirect",
    "alter",
    "hijack",
    "intercept",
    "all ",
    "any ",
    "every",
    "side effect",
    "side-effect",
    "always",
    "also",
    "additionally",
    "automatically",
)
_BACKTICK_RE = re.compile(r"`([\w.-]{3,64})`")


class ToolShadowingRule(RuleBase):
    """A description that changes how other tools behave: shadowing and puppet attacks."""

    id = "SY201"
    title = "Description steers other tools (shadowing)"
    severity = Severity.MEDIUM
    doc = (
        "Flags text that changes the behaviour of other tools: 'when the X tool is called/present ...', "
        "'before/instead of using X ...', 'override the recipient / replace the values', 'all emails must "
        "be sent to ...', 'has an important side effect'. High when the referenced tool belongs to another "
        "server in the same scan, when the text silently adds a recipient ('always BCC x@y'), or when "
        "several such phrases occur; one phrase naming no known tool is low (servers give workflow hints "
        "about their own tools), and so is another server's tool name in backticks."
    )
    why = (
        "Shadowing lets a server that is never called hijack a trusted server's tool (redirect its e-mails, "
        "alter its arguments) just by being loaded in the same agent."
    )
    fix = "Remove references to other tools; a description may only describe its own tool."

    def check(self, item: ScanItem, context: ScanContext) -> Iterator[Finding]:
        foreign = context.foreign_tools(item.server)
        for distinct, (key, start, end, m) in enumerate(
            prose_matches(item, _SHADOW_RE, _SHADOW_ANCHORS, 40, 200), start=1
        ):
            tools = [v for k, v in m.groupdict().items() if v and k.startswith("tool")]
            named = next((t for t in tools if t in foreign and t != item.name), None)
            if named:
                message = f"steers tool {named!r} of server(s) {', '.join(sorted(foreign[named]))}"
                yield self.finding(item, key, start, end, message, severity=Severity.HIGH)
            elif m.group("always") or distinct >= 2:
                # A silent extra recipient, or several steering moves in one text: shadowing, not workflow.
                message = f"steers other tools: {m.group(0)!r}"
                yield self.finding(item, key, start, end, message, severity=Severity.HIGH)
            else:  # one phrase naming no known tool: often a workflow hint about the server's own tools
                message = f"steers another tool: {m.group(0)!r}"
                yield self.finding(item, key, start, end, message, severity=Severity.LOW)
        if not foreign:
            return
        for key, start, end, m in prose_matches(item, _BACKTICK_RE):
            name = m.group(1)
            if name in foreign and name != item.name:
                message = f"names tool {name!r} of server(s) {', '.join(sorted(foreign[name]))}"
                yield self.finding(item, key, start, end, message, severity=Severity.LOW)


# Letters that render like Latin ones (a small, high-value subset of Unicode's confusables.txt).
_CONFUSABLES = str.maketrans(
    {
        "а": "a",
        "е": "e",
        "о": "o",
        "р": "p",
        "с": "c",
        "у": "y",
        "х": "x",
        "і": "i",
        "ј": "j",
        "ѕ": "s",
        "ԁ": "d",
        "ɡ": "g",
        "һ": "h",
        "ӏ": "l",
        "ո": "n",
        "ν": "v",
        "ο": "o",
        "α": "a",
        "ι": "i",
        "κ": "k",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "ɑ": "a",
        "Ꭺ": "a",
        "ⅰ": "i",
        "ⅼ": "l",
        "０": "0",
        "0": "o",
        "1": "l",
        "3": "e",
        "5": "s",
        "|": "l",
        "ı": "i",
    }
)
_SEPARATORS_RE = re.compile(r"[\s_\-.:/]+")


@lru_cache(maxsize=65536)
def name_skeleton(name: str) -> str:
    """A comparison key for names: NFKC, casefolded, separators dropped, lookalike letters mapped to Latin."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return _SEPARATORS_RE.sub("", folded).translate(_CONFUSABLES)


def _deletions(skeleton: str) -> set[str]:
    return {skeleton[:i] + skeleton[i + 1 :] for i in range(len(skeleton))}


_INDEX_ATTR = "_switchyard_name_index"


def _index(context: ScanContext) -> Mapping[str, list[tuple[str, str]]]:
    """Skeleton and single-deletion variants -> (tool name, server), built once per context."""
    cached: Mapping[str, list[tuple[str, str]]] | None = getattr(context, _INDEX_ATTR, None)
    if cached is not None:
        return cached
    index: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for it in context.items:
        if it.kind != "tool":
            continue
        sk = name_skeleton(it.name)
        index[sk].append((it.name, it.server))
        if len(sk) >= 6:
            for d in _deletions(sk):
                index[d].append((it.name, it.server))
    setattr(context, _INDEX_ATTR, index)
    return index


class NameCollisionRule(RuleBase):
    """A tool named like another server's tool: identical, same after normalising, one edit apart, or lookalike."""

    id = "SY202"
    title = "Tool name collides with another server's tool"
    severity = Severity.LOW
    kinds = frozenset({"tool"})
    doc = (
        "Compares each tool name with the tools of the other servers in the scan. Identical names are "
        "low (the gateway namespaces them, but the model may still confuse them); names equal after "
        "dropping case, separators and lookalike letters, or one edit apart (for names of 6+ characters), "
        "are medium; a name that differs only by lookalike (non-ASCII) letters is high."
    )
    why = (
        "Name squatting and near-collisions let a malicious server capture calls meant for a trusted tool "
        "(the model picks by name and description)."
    )
    fix = "Rename the tool, or disable one of the servers; pin the trusted server's tool definitions."

    def check(self, item: ScanItem, context: ScanContext) -> Iterator[Finding]:
        if len(context.servers) < 2 or not item.name:
            return
        index = _index(context)
        sk = name_skeleton(item.name)
        keys: set[str] = {sk} | (_deletions(sk) if len(sk) >= 6 else set[str]())
        seen: set[tuple[str, str]] = set()
        for k in keys:
            for other, server in index.get(k, ()):
                if server == item.server or (other, server) in seen:
                    continue
                seen.add((other, server))
                if other == item.name:
                    severity, how = Severity.LOW, "the same name as"
                elif name_skeleton(other) == sk and not item.name.isascii():
                    severity, how = Severity.HIGH, "a lookalike of"
                elif name_skeleton(other) == sk:
                    severity, how = Severity.MEDIUM, "the same normalised name as"
                else:
                    severity, how = Severity.MEDIUM, "one edit from"
                yield self.finding(
                    item,
                    "name",
                    0,
                    len(item.name),
                    f"{how} {other!r} on server {server!r}",
                    severity=severity,
                    weight=0.6 if severity is Severity.MEDIUM else 1.0,
                )
