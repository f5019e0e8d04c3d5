"""Offline sources of scan items: `tools/list` dumps and JSONL corpora (for `switchyard scan --file` and benches).

Owns: reading a file into `ScanItem`s — a JSON `tools/list` result (`{"tools": [...]}`, optionally with
`prompts`, `resources`, `resourceTemplates`, `instructions`, or wrapped in a JSON-RPC `result`), a bare JSON
list of tools, or a JSONL corpus with one definition (`name`, `description`, `input_schema`/`inputSchema`) or
one tool result (`text`) per line, with optional labels. Does not own: live servers (the gateway's upstreams
produce definitions and call `items_from_definitions`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from switchyard.security.model import ItemKind, ScanItem
from switchyard.security.text import item_from_definition

__all__ = ["LabelledItem", "items_from_definitions", "items_from_file", "load_corpus"]

_LIST_KEYS: tuple[tuple[str, ItemKind], ...] = (
    ("tools", "tool"),
    ("prompts", "prompt"),
    ("resources", "resource"),
    ("resourceTemplates", "resource_template"),
)


@dataclass(frozen=True, slots=True)
class LabelledItem:
    """A scan item from a corpus with its ground truth, when the corpus has one."""

    id: str
    item: ScanItem
    label: str | None = None
    category: str | None = None
    source: str | None = None

    @property
    def positive(self) -> bool:
        """True for rows labelled as an attack (`malicious` or `injection`)."""
        return self.label in ("malicious", "injection")


def items_from_definitions(data: Any, server: str = "file") -> list[ScanItem]:
    """Items from a decoded `tools/list`-style JSON value (object with lists, JSON-RPC envelope, or a list)."""
    if isinstance(data, Mapping) and "error" in data and "result" not in data:
        raise ValueError("it holds a JSON-RPC error response, not a tools/list result")
    if isinstance(data, Mapping) and "result" in data and isinstance(cast(Mapping[str, Any], data)["result"], Mapping):
        data = cast(Mapping[str, Any], data)["result"]
    if isinstance(data, list):
        data = {"tools": cast(list[Any], data)}
    if not isinstance(data, Mapping):
        raise ValueError("expected a tools/list result: an object with 'tools' or a list of tool definitions")
    obj = cast(Mapping[str, Any], data)
    known = [key for key, _ in _LIST_KEYS if key in obj] + (["instructions"] if "instructions" in obj else [])
    if not known:
        wanted = ", ".join(f"'{key}'" for key, _ in _LIST_KEYS)
        raise ValueError(f"expected a tools/list result: an object with {wanted} or 'instructions'")
    items: list[ScanItem] = []
    for key, kind in _LIST_KEYS:
        if key not in obj:
            continue
        entries = obj.get(key)
        if not isinstance(entries, list):
            raise ValueError(f"'{key}' must be a list of definitions")
        for index, entry in enumerate(cast(list[Any], entries)):
            if not isinstance(entry, Mapping):
                raise ValueError(f"'{key}'[{index}] is not a definition (an object)")
            entry_map = cast(Mapping[str, Any], entry)
            items.append(item_from_definition(kind, str(entry_map.get("server") or server), entry_map))
    instructions = obj.get("instructions")
    if isinstance(instructions, str) and instructions:
        items.append(item_from_definition("server_instructions", server, {"instructions": instructions}))
    return items


def _row_item(row: Mapping[str, Any], index: int) -> LabelledItem:
    row_id = str(row.get("id", index))
    label = row.get("label")
    extra = {
        "label": str(label) if label is not None else None,
        "category": str(row["category"]) if row.get("category") is not None else None,
        "source": str(row["source"]) if row.get("source") is not None else None,
    }
    server = str(row.get("server") or "corpus")
    if "text" in row and "description" not in row:
        item = ScanItem(kind="tool_output", server=server, name=row_id, fields={"text": str(row["text"])}, raw=row)
        return LabelledItem(id=row_id, item=item, **extra)
    definition = dict(row)
    if "input_schema" in definition and "inputSchema" not in definition:
        definition["inputSchema"] = definition.pop("input_schema")
    for drop in ("id", "label", "category", "source", "server"):
        definition.pop(drop, None)
    kind_value = row.get("kind", "tool")
    kind: ItemKind = kind_value if kind_value in ("tool", "prompt", "resource", "resource_template") else "tool"
    return LabelledItem(id=row_id, item=item_from_definition(kind, server, definition), **extra)


def load_corpus(path: str | Path) -> list[LabelledItem]:
    """Read a JSONL corpus: one definition or tool result per line, with optional `label`/`category`/`source`."""
    out: list[LabelledItem] = []
    with Path(path).open(encoding="utf-8") as fh:
        for index, raw_line in enumerate(fh):
            line = raw_line.strip()
            if not line:
                continue
            row = json.loads(line)
            if not isinstance(row, Mapping):
                raise ValueError(f"{path}:{index + 1}: expected a JSON object per line")
            out.append(_row_item(cast(Mapping[str, Any], row), index))
    return out


def items_from_file(path: str | Path, server: str | None = None) -> list[ScanItem]:
    """Items from a file: a JSONL corpus (`.jsonl`) or a JSON `tools/list` dump (server defaults to the file stem)."""
    p = Path(path)
    if p.suffix == ".jsonl":
        return [li.item for li in load_corpus(p)]
    data = json.loads(p.read_text(encoding="utf-8"))
    return items_from_definitions(data, server=server or p.stem)


def split_by(
    items: Sequence[LabelledItem], holdout_sources: Sequence[str]
) -> tuple[list[LabelledItem], list[LabelledItem]]:
    """Split a corpus into (development, held-out) by source prefix, to check that rules generalise."""
    held = [li for li in items if li.source and li.source.startswith(tuple(holdout_sources))]
    dev = [li for li in items if li not in held]
    return dev, held
