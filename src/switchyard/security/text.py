"""Text helpers shared by the rules: making invisible characters visible, excerpts, and field extraction.

Owns: turning an MCP definition (tool, prompt, resource, template) into the flat `fields` mapping of a
`ScanItem`, and the small pure functions every rule uses to build evidence. Does not own: any detection logic.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any, cast

from switchyard.security.model import Evidence, ItemKind, ScanItem

__all__ = [
    "ascii_copy",
    "evidence",
    "flatten_escapes",
    "is_invisible",
    "item_from_definition",
    "make_visible",
    "name_words",
]


@lru_cache(maxsize=64)
def ascii_copy(text: str) -> bytes:
    """`text` with every non-ASCII character replaced by `?`: same length, same offsets (for RE2, which reads
    bytes; cached, since several rules scan the same lower-cased text)."""
    return text.encode("ascii", "replace")


# Zero-width, bidi controls, BOM, word joiner, soft hyphen, tag characters, variation selectors: characters a
# reader does not see but a model does.
_INVISIBLE_RANGES: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF9, 0xFFFB),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE007F),
    (0xE0100, 0xE01EF),
)
_INVISIBLE_CLASS = "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in _INVISIBLE_RANGES)
INVISIBLE_RE = re.compile(f"[{_INVISIBLE_CLASS}]")
"""Matches one invisible or formatting character (compiled once; used by rules and `make_visible`)."""

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NAME_SPLIT_RE = re.compile(r"[^A-Za-z0-9]+")


def is_invisible(ch: str) -> bool:
    """True for a character a human reader does not see (zero-width, bidi control, tag character, ...)."""
    return INVISIBLE_RE.match(ch) is not None


def make_visible(text: str) -> str:
    """Replace invisible and control characters by `<U+XXXX>` so a report shows what the model sees."""

    def sub(m: re.Match[str]) -> str:
        return f"<U+{ord(m.group(0)):04X}>"

    return _CONTROL_RE.sub(sub, INVISIBLE_RE.sub(sub, text))


def evidence(text: str, start: int, end: int, context: int = 60) -> Evidence:
    """Build the evidence for `text[start:end]`: an excerpt with `context` characters around it, made visible."""
    lo = max(0, start - context)
    hi = min(len(text), end + context)
    body = text[lo:hi].replace("\r", " ").replace("\n", " ")
    excerpt = ("…" if lo > 0 else "") + make_visible(body) + ("…" if hi < len(text) else "")
    return Evidence(excerpt=excerpt, start=start, end=end)


def name_words(name: str) -> str:
    """Split an identifier into lower-case words: `getUser_info-v2` -> `get user info v2`."""
    return " ".join(w for w in _NAME_SPLIT_RE.split(_CAMEL_RE.sub(" ", name).lower()) if w)


def _walk_schema(schema: Mapping[str, Any], path: str, depth: int = 0) -> Iterator[tuple[str, str]]:
    """Yield (field path, text) for every text in a JSON schema: names, titles, descriptions, enums, defaults."""
    if depth > 6:
        return
    for key in ("title", "description"):
        value = schema.get(key)
        if isinstance(value, str) and value:
            yield f"{path}.{key}", value
    for key in ("default", "const", "examples", "enum"):
        value = schema.get(key)
        if isinstance(value, str) and value:
            yield f"{path}.{key}", value
        elif isinstance(value, list):
            texts = [v for v in cast(list[Any], value) if isinstance(v, str)]
            if texts:
                yield f"{path}.{key}", " | ".join(texts)
    props = schema.get("properties")
    if isinstance(props, Mapping):
        for pname, pschema in cast(Mapping[str, Any], props).items():
            ppath = f"{path}.properties.{pname}"
            yield f"{ppath}#name", pname
            if isinstance(pschema, Mapping):
                yield from _walk_schema(cast(Mapping[str, Any], pschema), ppath, depth + 1)
    items = schema.get("items")
    if isinstance(items, Mapping):
        yield from _walk_schema(cast(Mapping[str, Any], items), f"{path}.items", depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list):
            for i, option in enumerate(cast(list[Any], options)):
                if isinstance(option, Mapping):
                    yield from _walk_schema(cast(Mapping[str, Any], option), f"{path}.{key}[{i}]", depth + 1)


def _definition_fields(kind: ItemKind, raw: Mapping[str, Any]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for key in ("name", "title", "description", "uri", "uriTemplate", "mimeType", "instructions", "text"):
        value = raw.get(key)
        if isinstance(value, str) and value:
            fields[key] = value
    annotations = raw.get("annotations")
    if isinstance(annotations, Mapping):
        for akey, avalue in cast(Mapping[str, Any], annotations).items():
            if isinstance(avalue, str) and avalue:
                fields[f"annotations.{akey}"] = avalue
    for skey in ("inputSchema", "input_schema", "outputSchema"):
        schema = raw.get(skey)
        if isinstance(schema, Mapping):
            label = "inputSchema" if skey == "input_schema" else skey
            fields.update(_walk_schema(cast(Mapping[str, Any], schema), label))
    arguments = raw.get("arguments")  # prompts
    if kind == "prompt" and isinstance(arguments, list):
        for i, arg in enumerate(cast(list[Any], arguments)):
            if isinstance(arg, Mapping):
                arg_map = cast(Mapping[str, Any], arg)
                for akey in ("name", "title", "description"):
                    avalue = arg_map.get(akey)
                    if isinstance(avalue, str) and avalue:
                        suffix = "#name" if akey == "name" else f".{akey}"
                        fields[f"arguments[{i}]{suffix}"] = avalue
    return fields


def item_from_definition(kind: ItemKind, server: str, definition: Mapping[str, Any]) -> ScanItem:
    """Turn an MCP definition (a `tools/list` entry, a prompt, a resource, ...) into a `ScanItem`.

    The item's name is the definition's `name`, else its `uri` or `uriTemplate`. Every text of the
    definition becomes a field; parameter names appear as `inputSchema.properties.<p>#name`.
    """
    name = definition.get("name") or definition.get("uri") or definition.get("uriTemplate") or ""
    if kind == "server_instructions":
        name = name or "instructions"
    text_fields = _definition_fields(kind, definition)
    return ScanItem(kind=kind, server=server, name=str(name), fields=text_fields, raw=dict(definition))


_CONTINUATION_RE = re.compile(r"\\(?=\n)|(?<=\s)\\(?= )")


def flatten_escapes(text: str) -> str:
    """Turn escaped line breaks (a result that is a repr or YAML dump: `\\n`, `\\` continuations) into real
    whitespace, keeping every offset: each replacement has the length of what it replaces."""
    if "\\" not in text:
        return text
    text = text.replace("\\n", " \n").replace("\\t", "  ").replace("\\r", "  ")
    if "\\\n" in text or " \\ " in text:
        text = _CONTINUATION_RE.sub(" ", text)
    return text


def nfkc_casefold(text: str) -> str:
    """Normalise for comparison: NFKC (fullwidth and ligatures folded), then casefold."""
    return unicodedata.normalize("NFKC", text).casefold()
