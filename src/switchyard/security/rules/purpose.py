"""Rules on what a tool claims to be: a declared purpose that is itself malicious, and preference manipulation.

Owns: the offensive-capability vocabulary (exfiltration, credential theft, destruction, privilege escalation,
persistence, defence evasion, offensive reconnaissance: the tactics of MITRE ATT&CK) read from a tool's name
and description, and claims meant to bias the model's tool choice ("the best tool in the world", "always use
this tool", "other tools are buggy"). Does not own: instructions hidden in the text (`rules.instructions`).

Strong intent terms ("exfiltrate", "steal", "reverse shell") are high severity on their own; dual-use terms
("enumerate", "port scan", "payload") are low and only matter when several combine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from switchyard.security.engine import ScanContext
from switchyard.security.model import Finding, ScanItem, Severity
from switchyard.security.rules.base import DEFINITION_KINDS, RuleBase, finditer_lower
from switchyard.security.text import name_words

__all__ = ["MaliciousPurposeRule", "PreferenceManipulationRule"]

_I = re.IGNORECASE

# Unambiguous attacker intent: an honest tool does not describe itself this way.
_STRONG = (
    # ATT&CK tactic names declared as the purpose (also as name prefixes: exfil_, privesc_, recon_).
    r"exfiltrat\w*|exfil\b|recon(?:naissance)?\b|steal\w*|stolen|theft|attacker[- ]controlled|malicious\w*|"
    r"backdoor\w*|rootkit\w*|"
    r"keylog\w*|keystroke\s+(?:capture|logging)|ransom\w*|"
    r"(?:hidden|backdoor|rogue|secret)\s+(?:admin\w*\s+|root\s+|user\s+)?accounts?|"
    r"persistent\s+(?:remote\s+)?(?:access|foothold)|remote\s+access\s+trojan|"
    r"captur\w+\s+(?:all\s+)?keystrokes|reverse[ -]shell|bind[ -]shell|web[ -]?shell|"
    r"(?:deploy|install|drop|plant|spread|propagat|build|creat|generat|writ)\w*\s+(?:\w+\s+){0,3}?"
    r"(?:malware|spyware|stalkerware|trojans?|worms?|viruses|botnets?|rootkits?|keyloggers?|implants?)|"
    r"self[- ]replicat\w*|doxx\w*|deface\w*|clickjack\w*|typosquat\w*|spam\s+(?:campaigns?|bots?)|"
    r"(?:delete|remove|wipe|clear)\w*\s+(?:all\s+)?(?:volume\s+)?shadow\s+cop(?:y|ies)|"
    r"fork[ -]bomb|mimikatz|kerberoast\w*|dcsync|pass[- ]the[- ](?:hash|ticket)|overpass[- ]the[- ]hash|"
    r"(?:golden|silver)\s+ticket|password[ -]spray\w*|brute[ -]?forc\w*|bruteforce|phishing|"
    r"credential\s+(?:dump\w*|harvest\w*|theft|stuffing)|"
    r"(?:dump|harvest|extract|grab|sniff|capture|steal|decrypt)\w*\s+(?:\w+\s+){0,3}?"
    r"(?:credentials?|passwords?|password\s+hashes|hashes|secrets|private\s+keys|tokens|keychain|keyring|"
    r"kwallet|lsass|sam\s+(?:hive|database)|ntds|api\s+keys|secret\s+keys|ssh\s+keys|access\s+keys)|"
    r"crack\w*\s+(?:\w+\s+){0,2}(?:passwords?|hash\w*|secret|keys?|wpa)|privilege\s+escalation|"
    r"escalat\w+\s+(?:\w+\s+)?privileges?|privesc|(?:container|vm|chroot|sandbox|jail)\s+escape|"
    r"escape\s+(?:the\s+)?(?:container|chroot|jail|sandbox|virtual\s+machine|vm)|"
    r"evad\w+\s+(?:\w+\s+)?(?:detection|antivirus|edr|av|defender|security)|defen[cs]e\s+evasion|"
    r"bypass\w*\s+(?:\w+\s+){0,4}?(?:security|antivirus|av|edr|amsi|uac|applocker|authentication|"
    r"restrictions?|protections?|whitelisting|allowlisting|filters?|filtering|logging|2fa|mfa|"
    r"detection|integrity|no_root_squash|tcc)|"
    r"disabl\w+\s+(?:\w+\s+)?(?:antivirus|defender|firewall|security|logging|audit\w*|monitoring|edr|"
    r"selinux|apparmor)|tamper(?![- ]?(?:proof|evident|resistant|detection))\w*|timestomp\w*|"
    r"cover\w*\s+(?:\w+\s+)?tracks|"
    r"hid\w+\s+(?:\w+\s+)?(?:activity|tracks|malware|processes|payload|exfiltrated|data\s+(?:in|within))|"
    r"covert\w*|inject\w*\s+(?:\w+\s+){0,2}?(?:shellcode|dll|code|keystrokes|malicious|payloads?|library)|"
    r"shellcode|process\s+hollowing|hijack\w*|spoof\w*|forg\w+\s+(?:\w+\s+)?(?:tokens?|tickets?|"
    r"signatures?|certificates?|authentication)|poison\w*|man[- ]in[- ]the[- ]middle|mitm\b|"
    r"(?:sql|ldap|xpath|nosql|ognl|template|command|code|expression\s+language|xxe|dll|process|apc)\s+injection|"
    r"deserialization\s+attack|(?!heart\b|panic\b|asthma\b)\w+\s+attack\b(?!\s+surface)|exploit\w*|"
    r"zero[- ]day|cve-\d{4}-\d+|jailbreak\w*|"
    r"root\s+(?:android|ios|device)|persistence|self[- ]propagat\w*|botnet|ddos|denial[- ]of[- ]service|"
    r"(?:read|access|locate|collect|search\s+for|find|grab|copy)\w*\s+(?:\w+\s+){0,3}?sensitive\s+"
    r"(?:files|information|data|documents)|cryptojack\w*|crypto[- ]?min(?:er|ing)|"
    r"wip\w+\s+(?:\w+\s+)?(?:disks?|drives?|free\s+space|"
    r"evidence|logs)|destroy\w*\s+(?:\w+\s+)?(?:data|files|evidence|backups)|corrupt\w*\s+(?:\w+\s+)?"
    r"(?:files?|data|contents?|backups?)|exhaust\w*\s+(?:\w+\s+)?(?:disk|inodes?|process|memory|quota|"
    r"resources)|(?:without|bypassing)\s+(?:the\s+)?(?:user'?s?\s+)?(?:consent|authori[sz]ation|"
    r"permission|knowledge)|unauthori[sz]ed"
)

# Offensive tactics and capabilities that honest tools rarely declare, but that are not proof alone.
_MEDIUM = (
    r"cmdi\b|osint|malware|spyware|trojans?|deepfakes?|"
    r"clear\w*\s+(?:the\s+)?(?:event|audit|security|system)\s+logs?|dork\w*|enumerat\w+|port[ -]scan\w*|"
    r"open\s+ports|zone\s+transfer|"
    r"banner\s+grab\w*|lateral\s+movement|command[- ]and[- ]control|c2\s+(?:server|channel|beacon)|"
    r"arbitrary\s+(?:\w+\s+)?(?:code|commands?)|remote\s+(?:code|command)\s+execution|\brce\b|"
    r"execut\w+\s+(?:\w+\s+){0,2}?commands?\s+(?:\w+\s+){0,3}?(?:on|against)\s+(?:a\s+|the\s+)?remote|"
    r"encoded\s+(?:powershell|commands?|payloads?|scripts?)|sensitive\s+(?:files|information|data|documents)|"
    r"/proc/\S*(?:mem|environ)|process\s+(?:memory|environment)|object\s+injection|injection\s+technique|for\s+(?:offline\s+)?cracking|"
    r"(?:secrets|credentials|passwords)\s+from|unserialize|deseriali[sz]ation|payloads?"
)

# Dual use: common in offensive tooling, also in honest admin tools. Low weight, they only add up.
_DUAL = (
    r"fingerprint\w*|scan\w*\s+(?:\w+\s+){0,2}?(?:for\s+)?(?:vulnerab\w+|hosts|networks?|ports|secrets|"
    r"wireless|bluetooth)|vulnerab\w+|target\s+(?:host|system|network|domain|machine|server|device)s?|"
    r"(?:on|against|from)\s+(?:the\s+)?target|/proc/|suid|ntlm|kerberos|sweep|wordlist|handshakes?|pmkid|"
    r"impersonat\w+|relay\w*|sniff\w*|intercept\w*|path\s+traversal|race\s+condition|toctou|"
    r"world[- ]writable|setuid|ld_preload|autorun|"
    r"(?:dump|extract)\w*\s+(?:\w+\s+){0,2}?(?:memory|database|registry|hashes|contents|profiles|data)|"
    r"(?:gather|collect|harvest)\w*\s+(?:\w+\s+){0,2}?(?:emails?|addresses|usernames|users|information)"
)

_STRONG_RE = re.compile(rf"(?<!\w)(?:{_STRONG})", _I)
_MEDIUM_RE = re.compile(rf"(?<!\w)(?:{_MEDIUM})", _I)
_DUAL_RE = re.compile(rf"(?<!\w)(?:{_DUAL})", _I)
_TIERS: tuple[tuple[re.Pattern[str], float, Severity], ...] = (
    (_STRONG_RE, 1.0, Severity.HIGH),
    (_MEDIUM_RE, 0.5, Severity.MEDIUM),
    (_DUAL_RE, 0.25, Severity.LOW),
)


# Security products describe attacks too: a term preceded, in the same clause, by a defensive verb ("detect
# ransomware", "check whether an IP is malicious", "block brute-force attempts") counts as dual use only.
_DEFENSIVE_RE = re.compile(
    r"\b(?:detect\w*|check\w*|scan\w*\s+(?:\w+\s+){0,3}?for|analy[sz]\w*|identif\w*|monitor\w*|report\w*|"
    r"block\w*|prevent\w*|protect\w*|flag\w*|defend\w*|defen[cs]e|mitigat\w*|quarantin\w*|classif\w*|"
    r"look\s*up|reputation|threat\s+intel\w*|whether|is\s+it|simulat\w*|train\w*|awareness|anti|guard\w*|"
    r"hunt\w*|investigat\w*|triage|isolat\w*|suspect\w*|compromised|remediat\w*|respond\w*\s+to)\b",
    _I,
)
_CLAUSE_END_RE = re.compile(r"[.;:!?\n]")


_DEFENSIVE_AFTER_RE = re.compile(
    r"^\W*(?:(?:\w+\s+){0,2}?(?:simulat\w*|training|awareness)|detect\w*|protect\w*|prevent\w*|filter\w*|"
    r"analy[sz]\w*|scanner|scanning|report\w*|defen[cs]e|infections?|incidents?|activity|alerts?|indicators?)\b",
    _I,
)


def _defensive(text: str, start: int, end: int) -> bool:
    clause = text[max(0, start - 60) : start]
    ends = [m.end() for m in _CLAUSE_END_RE.finditer(clause)]
    if ends:
        clause = clause[ends[-1] :]
    return _DEFENSIVE_RE.search(clause) is not None or _DEFENSIVE_AFTER_RE.match(text[end : end + 40]) is not None


_GOVERNED_RE = re.compile(
    r"\b(?:reject\w*|refus\w*|verif\w*|validat\w*|detect\w*|prevent\w*|block\w*)\s+(?:\w+\s+){0,4}$", _I
)


def _defended_elsewhere(texts: list[tuple[str, str]], term: str) -> bool:
    """A name's term that the description puts right after a defensive verb ('rejects a tampered state') is
    read the way the description reads it: a name has no clause of its own. Every use in the description must
    be governed so, or the name's term keeps its weight."""
    uses = [(text, m) for key, text in texts if key != "name" for m in re.finditer(rf"\b{re.escape(term)}", text, _I)]
    return bool(uses) and all(_GOVERNED_RE.search(text[max(0, m.start() - 60) : m.start()]) for text, m in uses)


class MaliciousPurposeRule(RuleBase):
    """A tool whose declared purpose is an attack: exfiltration, credential theft, destruction, escalation."""

    id = "SY601"
    title = "Declared purpose is malicious"
    severity = Severity.HIGH
    doc = (
        "Reads the tool's name (split into words) and description for offensive capabilities, after the "
        "tactics of MITRE ATT&CK: exfiltration, credential access (dumping, cracking, brute force), "
        "privilege escalation, persistence (backdoors, autoruns), defence evasion (bypass AMSI/UAC, "
        "disable logging, tamper, timestomp), impact (ransomware, wiping, resource exhaustion), execution "
        "(shellcode, injection attacks, reverse shells). Strong intent words are high severity; dual-use "
        "words (enumerate, port scan, payload, target host) are low and only count in combination. A term in "
        "a defensive clause ('detect ransomware', 'check whether a URL is malicious', 'phishing simulation "
        "for awareness training') counts as dual use: security products describe attacks too."
    )
    why = (
        "An agent that can call such a tool can be steered (by the user, an injection or another tool) "
        "into attacking the very machine and accounts it runs with."
    )
    fix = "Do not install this server; if it is a sanctioned security tool, run it isolated and approve each call."

    def check(self, item: ScanItem, context: ScanContext) -> Iterator[Finding]:
        texts: list[tuple[str, str]] = []
        if item.name:
            texts.append(("name", name_words(item.name)))
        for key in ("title", "description"):
            if key in item.fields:
                texts.append((key, item.fields[key]))
        # Each distinct term scores points by tier; the points of all terms decide the item's severity.
        hits: list[tuple[float, Severity, str, re.Match[str]]] = []
        seen: list[str] = []
        for regex, points, severity in _TIERS:
            for key, text in texts:
                for m in finditer_lower(regex, text):
                    term = m.group(0).lower()
                    if any(term in t or t in term for t in seen):
                        continue
                    seen.append(term)
                    if points > 0.25 and (_defensive(text, m.start(), m.end()) or _defended_elsewhere(texts, term)):
                        hits.append((0.25, Severity.LOW, key, m))  # "detect malware", "check if a URL is malicious"
                    else:
                        hits.append((points, severity, key, m))
        if not hits:
            return
        total = sum(h[0] for h in hits)
        if total >= 1.0:
            top_severity, top_weight = Severity.HIGH, 1.0
        elif total >= 0.75:
            top_severity, top_weight = Severity.MEDIUM, 1.5
        elif total >= 0.5:
            top_severity, top_weight = Severity.MEDIUM, 1.0
        else:
            top_severity, top_weight = Severity.LOW, 1.0
        hits.sort(key=lambda h: -h[0])
        for i, (points, severity, key, m) in enumerate(hits):
            label = "offensive capability" if points >= 1.0 else "dual-use capability"
            source = item.name if key == "name" else item.fields.get(key, "")
            shown = m.group(0) if key == "name" else source[m.start() : m.end()]
            message = f"{label} {shown!r}"
            if i == 0:
                message += f" ({total:g} points from {len(hits)} term(s))"
                yield self._at(item, key, m, message, severity=top_severity, weight=top_weight)
            else:
                yield self._at(item, key, m, message, severity=severity, weight=0.0)

    def _at(
        self, item: ScanItem, key: str, m: re.Match[str], message: str, *, severity: Severity, weight: float
    ) -> Finding:
        if key == "name":  # offsets in the split name do not map back; point at the whole name
            return self.finding(item, "name", 0, len(item.name), message, severity=severity, weight=weight)
        return self.finding(item, key, m.start(), m.end(), message, severity=severity, weight=weight)


_TOOL = r"(?:tool|function|server|api|plugin|option|choice|method|service|solution)"
# Superlative self-promotion and disparagement of other tools: over the threshold alone.
_PREFERENCE_RE = re.compile(
    rf"\b(?:the\s+)?(?:best|greatest|most\s+(?:reliable|accurate|powerful|trusted|advanced|secure))\s+"
    rf"(?:\w+\s+){{0,2}}?{_TOOL}s?\s+(?:in\s+the\s+world|ever\b|on\s+the\s+market|there\s+is)"
    rf"|\b(?:this|it)\s+is\s+the\s+(?:best|greatest|number\s+one|#1|top)\s+(?:\w+\s+){{0,2}}?{_TOOL}\b"
    rf"|\b(?:do\s+not|don'?t|never)\s+(?:use|call|trust|choose)\s+(?:any\s+)?(?:other|alternative|"
    rf"similar|competing)\s+(?:\w+\s+)?{_TOOL}s?"
    rf"|\b(?:ignore|avoid)\s+(?:all\s+)?(?:other|alternative|similar)\s+(?:\w+\s+)?{_TOOL}s?"
    rf"|\b(?:other|alternative|similar|competing)\s+(?:\w+\s+)?{_TOOL}s?\s+(?:are|is|will\s+be)\s+(?:\w+\s+)?"
    r"(?:buggy|broken|unreliable|deprecated|unsafe|insecure|outdated|malicious|inaccurate|wrong|fake|slow)",
    _I,
)
# Insistence ("always use this tool", "the only correct tool"): honest servers write it as usage guidance.
_INSISTENCE_RE = re.compile(
    rf"\b(?:always|only)\s+(?:use|prefer|choose|select|call|pick|trust)\s+this\s+{_TOOL}"
    rf"|\b(?:prefer|use|choose|select|call)\s+this\s+{_TOOL}\s+(?:over|instead\s+of|rather\s+than)\s+"
    rf"(?:any|all|the)?\s*(?:other|alternative)"
    rf"|\bthe\s+only\s+(?:\w+\s+)?{_TOOL}\s+(?:you\s+(?:should|need)|for\s+(?:all|any|every))",
    _I,
)


class PreferenceManipulationRule(RuleBase):
    """Claims that push the model to pick this tool: "best tool in the world", "never use other tools"."""

    id = "SY602"
    title = "Preference manipulation in a description"
    severity = Severity.MEDIUM
    doc = (
        "Flags self-promotion and disparagement aimed at the model's tool choice: superlative claims about "
        "the tool itself ('this is the best tool in the world'), orders not to use other tools, and claims "
        "that other tools are buggy, deprecated or unsafe: medium, over the threshold alone. Insistence "
        "('always use this tool', 'the only tool you should use', 'use this tool instead of any other') is "
        "low: honest servers write it as usage guidance. Plain quality words ('the best match') are not "
        "flagged."
    )
    why = (
        "Preference manipulation attacks make an agent route calls (and the user's data) to the attacker's "
        "tool instead of the intended one; models weigh such claims when several tools fit."
    )
    fix = "State what the tool does; leave the choice between tools to the model and the user."

    def check(self, item: ScanItem, context: ScanContext) -> Iterator[Finding]:
        for key in ("description", "title"):
            text = item.fields.get(key)
            if not text:
                continue
            for m in _PREFERENCE_RE.finditer(text):
                yield self.finding(item, key, m.start(), m.end(), f"preference claim {m.group(0)!r}", weight=1.5)
            for m in _INSISTENCE_RE.finditer(text):
                yield self.finding(
                    item, key, m.start(), m.end(), f"insists on this tool: {m.group(0)!r}", severity=Severity.LOW
                )


PURPOSE_KINDS = DEFINITION_KINDS
