"""Rules on sensitive targets and ways out: credential files, exfiltration channels, and secret values.

Owns: references to credentials and sensitive files (~/.ssh, id_rsa, .env, mcp.json, cloud credential files),
exfiltration channels written into metadata or data (hard-coded addresses, URLs and "send/forward to"
directives), and secret values themselves (private keys, cloud and API keys, tokens) with exact spans so the
output guard can redact them. Does not own: parameters that ask for secrets (`rules.params`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

from switchyard.security.anchors import MIN_TEXT
from switchyard.security.engine import SECRET_TAG, ScanContext
from switchyard.security.model import Evidence, Finding, ScanItem, Severity
from switchyard.security.prefilter import Prefilter
from switchyard.security.rules.base import (
    ALL_KINDS,
    DEFINITION_KINDS,
    RuleBase,
    all_fields,
    anchored,
    contains_any,
    lowered,
    may_match,
    prose_matches,
)

__all__ = ["ExfiltrationChannelRule", "SecretValueRule", "SensitiveFileRule"]

_I = re.IGNORECASE

_SENSITIVE_FILE_RE = re.compile(
    r"(?:~|\$HOME|%USERPROFILE%|/home/\w+|/root|/Users/\w+)?/?\.ssh(?:/[\w.-]+)?"
    r"|\bid_(?:rsa|dsa|ecdsa|ed25519)(?:\.pub)?\b|\bauthorized_keys\b|\bknown_hosts\b"
    r"|(?<![\w.])\.env(?:\.\w+)?\b(?!\s*(?:var|variable))|\bmcp\.json\b|claude_desktop_config\.json"
    r"|\.aws/(?:credentials|config)|~/\.azure/|\.config/gcloud|application_default_credentials\.json"
    r"|\.kube/config|\bkubeconfig\b|\.docker/config\.json|\.npmrc\b|\.pypirc\b|\.netrc\b|\.git-credentials\b"
    r"|\.gnupg\b|\bsecring\.gpg\b|/etc/(?:passwd|shadow|sudoers|gshadow)\b|\bwallet\.dat\b|\bkeychain\b"
    r"|\bLogin\s+Data\b|\bcookies\.sqlite\b|\blogins\.json\b|\bkey4\.db\b|\.bash_history\b|\.zsh_history\b"
    r"|\.cursor/|\bsecrets?\.(?:json|ya?ml|toml)\b|\bcredentials\.json\b|\bservice[-_]account\.json\b",
    _I,
)

_SECRET_WORDS_RE = re.compile(
    r"\b(?:private\s+(?:ssh\s+)?keys?|ssh\s+keys?|api[\s_-]?keys?|access\s+tokens?|secret\s+keys?|"
    r"passwords?|passphrases?|credentials?|session\s+(?:cookies?|tokens?)|seed\s+phrases?|mnemonic|"
    r"security\s+codes?|2fa\s+codes?|otp|credit\s+card(?:\s+numbers?)?|passport\s+numbers?|"
    r"bank\s+account(?:\s+numbers?)?|social\s+security\s+numbers?|ssn)\b",
    _I,
)
_READ_VERB_RE = re.compile(
    r"\b(?:read|cat|open|load|include|pass|attach|send|forward|upload|copy|paste|provide|share|extract|"
    r"collect|fetch|get|retrieve|output|print|return|append|embed|put)\b",
    _I,
)


_SENSITIVE_ANCHORS = (
    ".ssh",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "authorized_keys",
    "known_hosts",
    ".env",
    "mcp.json",
    "claude_desktop",
    ".aws",
    ".azure",
    "gcloud",
    "credentials",
    ".kube",
    "kubeconfig",
    ".docker",
    ".npmrc",
    ".pypirc",
    ".netrc",
    ".git-cred",
    ".gnupg",
    "secring",
    "/etc/",
    "wallet.dat",
    "keychain",
    "login data",
    "cookies.sqlite",
    "logins.json",
    "key4.db",
    "_history",
    ".cursor",
    "secret",
)


class SensitiveFileRule(RuleBase):
    """References to credential stores and sensitive files: ~/.ssh, id_rsa, .env, mcp.json, cloud credentials."""

    id = "SY301"
    title = "Reference to credentials or a sensitive file"
    severity = Severity.MEDIUM
    # Definitions only: results list such files legitimately (a directory listing); there SY701 weighs
    # a directive that moves them.
    kinds = DEFINITION_KINDS
    doc = (
        "Flags paths and names of credential stores (~/.ssh, id_rsa, authorized_keys, .env, mcp.json, "
        "claude_desktop_config.json, ~/.aws/credentials, kubeconfig, .npmrc, .netrc, /etc/shadow, browser "
        "password stores) in definitions (results list such files legitimately). In a definition, a secret "
        "noun (private key, API key, password) next to a verb that moves data (read, pass, send, include) is "
        "flagged low."
    )
    why = (
        "Tool poisoning payloads make the model read a key or config file and pass its content to the "
        "attacker's tool; a description has no reason to mention the user's credential files."
    )
    fix = "Remove the reference; tools that truly manage credentials should say so in their name and purpose."

    def check(self, item: ScanItem, context: ScanContext) -> Iterator[Finding]:
        for key, start, end, m in prose_matches(item, _SENSITIVE_FILE_RE, _SENSITIVE_ANCHORS, 40, 60, lower=True):
            yield self.finding(item, key, start, end, f"sensitive path {m.group(0)!r}")
        for key, start, end, m in prose_matches(item, _SECRET_WORDS_RE, lower=True):
            if key == "title":
                continue
            text = item.fields[key]
            window = text[max(0, start - 60) : end + 30]
            if _READ_VERB_RE.search(window) and _ADDRESSED_RE.search(text):
                yield self.finding(item, key, start, end, f"asks to move {m.group(0)!r}", severity=Severity.LOW)


_ADDRESSED_RE = re.compile(r"\b(?:you|your|assistant|model|ai|llm|agent)\b|\bplease\b|\b(?:must|should)\b", _I)

_EMAIL_RE = re.compile(r"\b[\w.+-]+@(?:[\w-]+\.)+[a-z]{2,}\b", _I)
_URL_RE = re.compile(r"\b(?:https?|ftp|wss?)://[^\s'\"<>)\]}]+", _I)
_SEND_TO_RE = re.compile(
    r"\b(?:send|forward|e-?mail|upload|post|transmit|exfiltrate|copy|bcc|cc|redirect|report|leak|share|"
    r"sync|mirror|relay|wire|transfer)\w*\s+(?:\S+\s+){0,8}?(?:to|at|into)\s*:?\s*"
    r"(?:(?:my|the|this|our|their|his|her)\s+(?:\w+\s+){0,3}?)?(?=[\w.+-]+@|https?://|'|\"|`|IBAN|\$)",
    _I,
)
_BENIGN_HOSTS = re.compile(
    r"^(?:[\w-]+\.)*(?:example\.(?:com|org|net)|localhost|127\.0\.0\.1|json-schema\.org|schema\.org|"
    r"w3\.org|github\.com|githubusercontent\.com|modelcontextprotocol\.io|python\.org|npmjs\.com|"
    r"wikipedia\.org|readthedocs\.io|docs\.[\w.-]+)$",
    _I,
)
_HOST_RE = re.compile(r"^(?:\w+)://([^/:?#]+)")


_SEND_ANCHORS = (
    "send",
    "forward",
    "mail",
    "upload",
    "post",
    "transmit",
    "exfiltrate",
    "copy",
    "bcc",
    "cc",
    "redirect",
    "report",
    "leak",
    "share",
    "sync",
    "mirror",
    "relay",
    "wire",
    "transfer",
)


class ExfiltrationChannelRule(RuleBase):
    """A destination for data written into the text: "send ... to x@y.com", webhooks, hard-coded addresses."""

    id = "SY302"
    title = "Exfiltration channel"
    severity = Severity.MEDIUM
    kinds = DEFINITION_KINDS  # in results, SY701 grades "send ... to <address>" with the rest of the sentence
    doc = (
        "In definitions: hard-coded e-mail addresses and URLs (other than documentation and schema hosts), "
        "each low on its own, and 'send/forward/upload ... to <address>' directives, medium. Tool results "
        "legitimately contain addresses; there SY701 grades such directives instead."
    )
    why = (
        "Shadowing and poisoning payloads redirect data to the attacker ('send all emails to attkr@...'); "
        "an injected result asks the agent to forward the user's data to an outside address."
    )
    fix = "Remove fixed destinations from descriptions; let the user supply recipients and endpoints."

    def check(self, item: ScanItem, context: ScanContext) -> Iterator[Finding]:
        for key, start, end, _m in prose_matches(item, _SEND_TO_RE, _SEND_ANCHORS, 2, 200, lower=True):
            text = item.fields[key]
            yield self.finding(item, key, start, end, f"directs data to {text[end : end + 40]!r}")
        for key, start, end, m in prose_matches(item, _EMAIL_RE, ("@",), 64, 255):
            host = m.group(0).rsplit("@", 1)[1]
            if not _BENIGN_HOSTS.match(host):
                yield self.finding(item, key, start, end, f"e-mail address {m.group(0)!r}", severity=Severity.LOW)
        for key, start, end, m in prose_matches(item, _URL_RE, ("://",), 8, 2048):
            hm = _HOST_RE.match(m.group(0))
            if hm and not _BENIGN_HOSTS.match(hm.group(1)):
                yield self.finding(item, key, start, end, f"URL {m.group(0)!r}", severity=Severity.INFO)


# Secret formats with their provider. Kept specific: a false redaction corrupts a result.
_SECRET_PATTERNS: tuple[tuple[str, str], ...] = (
    (
        "private key",
        r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]{16,8000}?-----END (?:[A-Z]+ )*"
        r"PRIVATE KEY(?: BLOCK)?-----",
    ),
    ("AWS access key id", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b"),
    ("AWS secret key", r"(?i:aws_?secret_?access_?key|aws_?secret)\W{1,4}[A-Za-z0-9/+=]{40}\b"),
    ("GitHub token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})\b"),
    ("GitLab token", r"\bglpat-[A-Za-z0-9_-]{20,}\b"),
    ("Slack token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),
    ("Slack webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,}"),
    ("Google API key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
    ("Stripe key", r"\b(?:sk|rk)_live_[0-9A-Za-z]{20,}\b"),
    ("Anthropic key", r"\bsk-ant-[A-Za-z0-9_-]{20,}\b"),
    (
        "OpenAI key",
        r"\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}\b"
        r"|\bsk-(?:proj|svcacct)-[A-Za-z0-9_-]{40,}\b",
    ),
    ("Hugging Face token", r"\bhf_[A-Za-z]{34,}\b"),
    ("npm token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("JSON web token", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}\b"),
    ("bearer token", r"(?i:\bbearer)\s+[A-Za-z0-9_\-.=]{24,}"),
    (
        "password or key assignment",
        r"(?i:\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token|client[_-]?secret)"
        r"[\"']?\s*[:=]\s*[\"']?)(?=[^\s\"']{12,})(?=[^\s\"']*\d)(?=[^\s\"']*[A-Za-z])[^\s\"',;]{12,200}",
    ),
)
_SECRET_ANCHORS: tuple[tuple[str, ...], ...] = (
    ("private key",),
    ("akia", "asia", "agpa", "aida", "aroa", "anpa", "anva", "aipa"),
    ("aws",),
    ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ("glpat-",),
    ("xox",),
    ("hooks.slack",),
    ("aiza",),
    ("_live_",),
    ("sk-ant-",),
    ("sk-",),
    ("hf_",),
    ("npm_",),
    ("eyj",),
    ("bearer",),
    ("pass", "pwd", "secret", "key", "token"),
)
# For the formats scanned whole (one anchor): how many characters before its anchor every match starts
# (a literal prefix: `glpat-` at 0, `https://` before `hooks.slack`), so a tool result is tried only there
# (`anchored`); None: the anchor is not at a fixed place (PEM keys), or the format is windowed.
_SECRET_OFFSETS: tuple[int | None, ...] = (None, None, 0, None, 0, 0, 8, 0, 2, 0, 0, 0, 0, 0, 0, None)
_ANY_SECRET_ANCHOR = tuple(dict.fromkeys(anchor for anchors in _SECRET_ANCHORS for anchor in anchors))
_SECRET_CHECKS: tuple[tuple[str, re.Pattern[str], tuple[str, ...], int | None], ...] = tuple(
    (name, re.compile(pattern), anchors, offset)
    for (name, pattern), anchors, offset in zip(_SECRET_PATTERNS, _SECRET_ANCHORS, _SECRET_OFFSETS, strict=True)
)


# Where the keyword form ("password=...") can start, for RE2 on the lower-cased text (see
# `security.prefilter`): its keywords, with `[i?]`/`[s?]`/`[k?]` for the letters its `(?i:...)` also matches as
# non-ASCII ones (U+0131, U+017F, U+212A), and without the leading `\b` (RE2 reads those letters as `?`).
_KEYWORD_START = (
    r"(?:pa[s?][s?]word|pa[s?][s?]wd|pwd|[s?]ecret|ap[i?][_-]?[k?]ey|acce[s?][s?][_-]?to[k?]en|auth[_-]?to[k?]en|"
    r"cl[i?]ent[_-]?[s?]ecret)"
)
_KEYWORD_PREFILTER = Prefilter(_SECRET_CHECKS[-1][1], [(_KEYWORD_START, (0,))])


class SecretValueRule(RuleBase):
    """Secret values in text (private keys, cloud and API keys, tokens), with spans for redaction."""

    id = "SY303"
    title = "Secret value present"
    severity = Severity.HIGH
    kinds = ALL_KINDS
    doc = (
        "Finds secret values by their published formats: PEM private keys, AWS access key ids and secret "
        "keys, GitHub, GitLab, Slack, Google, Stripe, Anthropic, OpenAI, Hugging Face and npm tokens, JSON "
        "web tokens, bearer tokens, and 'password=/api_key=' assignments with a long mixed value. Each "
        "finding's evidence span is the secret itself, which the output guard redacts."
    )
    why = "A secret in a tool result reaches the model, its logs and possibly an attacker's tool in the same chat."
    fix = "Rotate the secret; enable redaction in the output guard; keep secrets out of tool results and metadata."

    def check(self, item: ScanItem, context: ScanContext) -> Iterator[Finding]:
        values = list(item.fields.values())
        # One field (a tool result): its own text, so the lower-cased copy and anchor answers other rules
        # computed for it are reused (`contains_any`), and 10 KB is not copied and re-hashed per result.
        low = lowered(values[0] if len(values) == 1 else " ".join(values))
        if len(low) < MIN_TEXT and not contains_any(low, _ANY_SECRET_ANCHOR):
            return  # a short text: one pass for the formats below, each tried only where its anchors occur
        one = values[0] if len(values) == 1 else None
        for kind, regex, anchors, offset in _SECRET_CHECKS:
            if one is not None and not may_match(regex, one):
                continue  # ruled out for the whole text (`security.gate`), before any anchor is looked up
            if contains_any(low, anchors):
                if offset is not None and len(values) == 1:
                    # A tool result: the format is tried only where its prefix is (same matches as a scan).
                    (key,) = item.fields
                    found = anchored(regex, values[0], anchors, offset)
                    yield from self._findings(item, kind, ((key, m.start(), m.end(), m) for m in found))
                    continue
                # Formats with a literal prefix scan fast; the keyword form is matched near its keywords only.
                window = (anchors, 20, 240) if len(anchors) > 1 else (None, 0, 0)
                prefilter = _KEYWORD_PREFILTER if regex is _KEYWORD_PREFILTER.regex else None
                matches = prose_matches(item, regex, *window, fields=all_fields, prefilter=prefilter)
                yield from self._findings(item, kind, matches)

    def _findings(
        self, item: ScanItem, kind: str, matches: Iterator[tuple[str, int, int, re.Match[str]]]
    ) -> Iterator[Finding]:
        for key, start, end, m in matches:
            # Weight 0: a secret is a leak to redact, not evidence that the item is an attack.
            found = self.finding(
                item,
                key,
                m.start(),
                m.end(),
                f"{kind} ({m.end() - m.start()} characters)",
                tags=(SECRET_TAG,),
                weight=0.0,
            )
            # Never echo the secret in a report: show only its first characters.
            masked = m.group(0)[:4] + "…[REDACTED]"
            yield dataclasses.replace(found, evidence=Evidence(excerpt=masked, start=start, end=end))
