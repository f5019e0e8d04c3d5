"""Rules on hiding: invisible and confusable Unicode, encoded payloads, and abnormal length or entropy.

Owns: zero-width and bidi-control characters, Unicode tag characters (U+E0000-E007F, decoded to show the
hidden ASCII), mixed-script names (homoglyphs), base64/hex blobs that decode to readable text, and
descriptions whose size or randomness is far from a normal tool description. Does not own: what a decoded
payload says beyond a quick check for instruction words (the other rules read the plain text).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator

from switchyard.security.engine import ScanContext
from switchyard.security.model import Finding, ScanItem, Severity
from switchyard.security.rules.base import ALL_KINDS, DEFINITION_KINDS, RuleBase, name_fields, prose_fields
from switchyard.security.text import INVISIBLE_RE, make_visible

__all__ = ["AbnormalTextRule", "ConfusableNameRule", "EncodedPayloadRule", "InvisibleUnicodeRule"]

_RUN_RE = re.compile(f"(?:{INVISIBLE_RE.pattern})+")
_TAG_START, _TAG_END = 0xE0000, 0xE007F
_BIDI = frozenset(range(0x202A, 0x202F)) | frozenset(range(0x2066, 0x206A)) | {0x200E, 0x200F, 0x061C}
_ZWJ, _VS16 = 0x200D, 0xFE0F


def _is_emoji_join(text: str, start: int, end: int) -> bool:
    """A lone ZWJ / VS16 inside an emoji sequence is how emoji are written, not a hiding place."""
    if end - start != 1 or ord(text[start]) not in (_ZWJ, _VS16):
        return False
    before = text[start - 1] if start > 0 else ""
    return bool(before) and (ord(before) >= 0x2190 or unicodedata.category(before) == "So")


class InvisibleUnicodeRule(RuleBase):
    """Zero-width characters, bidi controls and tag characters: text the user cannot see but the model reads."""

    id = "SY401"
    title = "Invisible or bidirectional-control characters"
    severity = Severity.MEDIUM
    kinds = ALL_KINDS
    doc = (
        "Flags runs of invisible characters (zero-width space/joiner, word joiner, BOM, soft hyphen, "
        "variation selectors), bidirectional controls (U+202A-202E, U+2066-2069) and Unicode tag characters "
        "(U+E0000-E007F). Tag characters spell hidden ASCII, which the evidence decodes; runs of three or "
        "more and any tag or bidi character are high. A single ZWJ or VS16 inside an emoji is ignored."
    )
    why = (
        "ASCII smuggling hides a whole instruction in tag characters that render as nothing; bidi controls "
        "make the displayed text differ from what the model reads (Trojan Source)."
    )
    fix = "Strip the characters; no tool name, description or result needs invisible code points."

    def check(self, item: ScanItem, context: ScanContext) -> Iterator[Finding]:
        for key, text in item.fields.items():
            if text.isascii():
                continue
            for m in _RUN_RE.finditer(text):
                if _is_emoji_join(text, m.start(), m.end()):
                    continue
                run = m.group(0)
                codes = [ord(c) for c in run]
                tags = "".join(chr(c - _TAG_START) for c in codes if _TAG_START <= c <= _TAG_END)
                bidi = any(c in _BIDI for c in codes)
                severe = bool(tags) or bidi or len(run) >= 3 or key == "name" or key.endswith("#name")
                message = f"{len(run)} invisible character(s) {make_visible(run[:8])}"
                if tags:
                    message += f" spelling {tags[:80]!r}"
                yield self.finding(
                    item,
                    key,
                    m.start(),
                    m.end(),
                    message,
                    severity=Severity.HIGH if severe else Severity.MEDIUM,
                )


_SCRIPT_CACHE: dict[str, str] = {}


def _script(ch: str) -> str:
    """A coarse script name for a letter (LATIN, CYRILLIC, GREEK, ...), from its Unicode name."""
    cached = _SCRIPT_CACHE.get(ch)
    if cached is None:
        name = unicodedata.name(ch, "")
        cached = name.split(" ", 1)[0] if name else "UNKNOWN"
        if cached in ("FULLWIDTH", "MATHEMATICAL", "CIRCLED", "PARENTHESIZED", "SMALL", "MODIFIER"):
            cached = "LOOKALIKE"
        _SCRIPT_CACHE[ch] = cached
    return cached


_WORD_RE = re.compile(r"[^\W\d_]+")


def _mixed_script(word: str) -> bool:
    """True when a word mixes Latin with another script's letters, or uses lookalike forms (fullwidth, math)."""
    scripts = {_script(c) for c in word if not c.isascii()}
    if not scripts:
        return False
    if "LOOKALIKE" in scripts:
        return True
    has_latin = any(c.isascii() and c.isalpha() for c in word)
    return has_latin and bool(scripts - {"LATIN"})


class ConfusableNameRule(RuleBase):
    """Homoglyphs in names: Latin mixed with Cyrillic/Greek letters, fullwidth or mathematical lookalikes."""

    id = "SY402"
    title = "Confusable characters in a name"
    severity = Severity.HIGH
    doc = (
        "Flags tool, prompt and parameter names whose words mix Latin letters with letters of another "
        "script (a Cyrillic 'а' in 'reаd_file') or use fullwidth/mathematical lookalikes, and the same in "
        "descriptions at medium severity. Names written wholly in one non-Latin script are fine."
    )
    why = (
        "A lookalike name lets a malicious tool pass for a trusted one in approval dialogs and collide with "
        "it in the model's view (name squatting)."
    )
    fix = "Rename with plain characters of one script; check which server really provides the tool."

    def check(self, item: ScanItem, context: ScanContext) -> Iterator[Finding]:
        for key, text in name_fields(item):
            if text.isascii():
                continue
            for m in _WORD_RE.finditer(text):
                if _mixed_script(m.group(0)):
                    yield self.finding(item, key, m.start(), m.end(), f"mixed-script name {make_visible(m.group(0))!r}")
        for key, text in prose_fields(item):
            if text.isascii():
                continue
            for m in _WORD_RE.finditer(text):
                word = m.group(0)
                if len(word) >= 3 and _mixed_script(word):
                    yield self.finding(
                        item,
                        key,
                        m.start(),
                        m.end(),
                        f"mixed-script word {word!r}",
                        severity=Severity.MEDIUM,
                        weight=0.6,
                    )


_BLOB_MIN = 24
_BLOB_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_=-"
_BLOB_RE = re.compile(f"[A-Za-z0-9+/_=-]{{{_BLOB_MIN},}}")  # what `_blob_spans` finds, kept as the reference
# Every character of a blob's alphabet -> "a", any other byte -> " ".
_BLOB_MARKS = bytes(0x61 if byte in _BLOB_CHARS else 0x20 for byte in range(256))
_BLOB_RUN = b"a" * _BLOB_MIN


def _blob_spans(text: str) -> Iterator[tuple[int, int]]:
    """The `(start, end)` of each `_BLOB_RE` match in `text`: the maximal runs of 24+ base64/hex characters.

    The regex tries to match at every letter of every word (and fails, words being short); here the text is
    reduced to one byte per character (latin-1, anything else "?", which is not in the alphabet, so offsets
    and runs are kept), marked in one `bytes.translate`, and runs are found with `bytes.find`.
    """
    marks = text.encode("latin-1", "replace").translate(_BLOB_MARKS)
    pos = 0
    while (start := marks.find(_BLOB_RUN, pos)) != -1:
        end = marks.find(b" ", start + _BLOB_MIN)
        if end == -1:
            end = len(marks)
        yield start, end
        pos = end


_B64_RE = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")
_HEX_RE = re.compile(r"(?:[0-9A-Fa-f]{2}){16,}")
_INSTRUCTION_WORDS_RE = re.compile(
    r"\b(?:ignore|instructions?|assistant|system|send|read|forward|password|secret|ssh|token|user|execute|"
    r"curl|wget|bash|http)\b",
    re.IGNORECASE,
)


def _decoded_text(blob: str, hexadecimal: bool) -> str | None:
    # A payload reveals itself in its first kilobytes; a megabyte image in a result need not be decoded whole.
    blob = blob[:4096]
    try:
        if hexadecimal:
            raw = binascii.unhexlify(blob)
        else:
            padded = blob + "=" * (-len(blob) % 4)
            raw = base64.urlsafe_b64decode(padded) if ("-" in blob or "_" in blob) else base64.b64decode(padded)
    except (binascii.Error, ValueError):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(1 for c in text if c.isprintable() or c in "\n\t")
    letters = sum(1 for c in text if c.isalpha() or c == " ")
    if len(text) < 12 or printable < 0.95 * len(text) or letters < 0.6 * len(text) or " " not in text:
        return None
    return text


class EncodedPayloadRule(RuleBase):
    """Base64 or hex blobs that decode to readable text: instructions hidden from a human reviewer."""

    id = "SY403"
    title = "Encoded payload that decodes to text"
    severity = Severity.MEDIUM
    kinds = ALL_KINDS
    doc = (
        "Decodes base64, base64url and hex runs of 24+ characters; when the result is readable text "
        "(printable, mostly letters, with spaces) it is reported with the decoded start. Decoded text "
        "with instruction words (ignore, send, password, ssh, ...) is high. Random tokens and hashes, "
        "which do not decode to text, are not flagged."
    )
    why = "Encoding hides an instruction from reviewers and keyword filters while models readily decode it."
    fix = "Remove the encoded text or replace it with its plain meaning."

    def check(self, item: ScanItem, context: ScanContext) -> Iterator[Finding]:
        for key, text in prose_fields(item):
            for start, end in _blob_spans(text):
                blob = text[start:end]
                hexadecimal = _HEX_RE.fullmatch(blob) is not None
                if hexadecimal or _B64_RE.fullmatch(blob):
                    decoded = _decoded_text(blob, hexadecimal)
                    if decoded is None:
                        continue
                    instructive = _INSTRUCTION_WORDS_RE.search(decoded) is not None
                    yield self.finding(
                        item,
                        key,
                        start,
                        end,
                        f"decodes to {make_visible(decoded[:80])!r}",
                        severity=Severity.HIGH if instructive else Severity.MEDIUM,
                    )


_LONG_DESCRIPTION = 4000
_MANY_LINES = 60
_HIGH_ENTROPY_TOKEN = re.compile(r"\S{64,}")


def _entropy(s: str) -> float:
    counts = Counter(s)
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


class AbnormalTextRule(RuleBase):
    """Descriptions far longer than tools need, and long high-entropy strings."""

    id = "SY404"
    title = "Abnormal length or entropy"
    severity = Severity.LOW
    kinds = DEFINITION_KINDS
    doc = (
        f"Flags descriptions over {_LONG_DESCRIPTION} characters or {_MANY_LINES} lines, and tokens of 64+ "
        "characters with entropy above 4.5 bits per character in any definition text. Low severity: long "
        "honest descriptions exist, but length is where payloads hide, so it adds weight to other signals."
    )
    why = "Payloads are often appended far below the visible part of a description, or packed into random-looking text."
    fix = "Keep descriptions short; move documentation to the server's docs."

    def check(self, item: ScanItem, context: ScanContext) -> Iterator[Finding]:
        for key, text in prose_fields(item):
            if key == "description" and (len(text) > _LONG_DESCRIPTION or text.count("\n") > _MANY_LINES):
                yield self.finding(item, key, 0, len(text), f"description of {len(text)} characters")
            for m in _HIGH_ENTROPY_TOKEN.finditer(text):
                if _entropy(m.group(0)) > 4.5:
                    yield self.finding(item, key, m.start(), m.end(), "high-entropy token", severity=Severity.INFO)
