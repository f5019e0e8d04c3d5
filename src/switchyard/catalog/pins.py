"""Pinning and quarantine: rug-pull protection for tool definitions, and start-up scanning.

Owns: the canonical form and hash of a tool definition, the decision for each tool (admit, pin on first use,
hold because it changed, hold because it is new on a strict server, hold because the scanner found something
at or above the quarantine severity), and the readable diff shown by `switchyard approve`. Does not own the
store (store/) or the rules (security/).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, cast

from switchyard.catalog.catalog import Catalog, Entry
from switchyard.config import GatewayConfig
from switchyard.errors import StoreError
from switchyard.store.base import Pin, PinStore

__all__ = ["PINNED_META", "Hold", "Pinning", "canonical", "definition_diff", "digest"]

logger = logging.getLogger("switchyard.pins")

HoldKind = Literal["changed", "new", "finding"]
Scan = Callable[[str, Mapping[str, Any]], str | None]
"""(server, tool definition) -> a one-line reason when the scanner flags it at the quarantine severity."""


PINNED_META = ("ui", "ui/resourceUri")
"""The `_meta` keys a pin covers: MCP Apps' link from a tool to the UI a host renders for it (`ui`, with
`resourceUri` and `visibility`; `ui/resourceUri`, its older flat form). Swapping that UI, or hiding a tool from
the model, changes what the tool does for the user as much as a new description does. The rest of `_meta` is
transport detail (server info, trace context) and is not pinned."""


def _body(definition: Mapping[str, Any], *, meta: bool) -> dict[str, Any]:
    body = {k: v for k, v in definition.items() if k != "_meta"}
    if meta:
        # Always written, `{}` when none of the keys is there: a pin in this form then tells itself apart from
        # one made before pins covered `_meta` (see `_predates_meta`), also for a tool that has no view yet.
        found = definition.get("_meta")
        items = cast(Mapping[str, Any], found).items() if isinstance(found, Mapping) else ()
        body["_meta"] = {k: v for k, v in items if k in PINNED_META}
    return body


def _dumps(body: Mapping[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(definition: Mapping[str, Any]) -> str:
    """The definition as sorted, compact JSON: every field, and of `_meta` only the `PINNED_META` keys (an
    empty `_meta` when it has none of them)."""
    return _dumps(_body(definition, meta=True))


def digest(definition: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical definition."""
    return hashlib.sha256(canonical(definition).encode()).hexdigest()


def _predates_meta(pin: Pin, definition: Mapping[str, Any]) -> bool:
    """Whether `pin` was made before pins covered `_meta` (its JSON has none) and matches `definition` as such
    a pin would have: then the only difference is the newly covered keys, first seen now (trust on first use,
    as for the rest of the pin when it was made)."""
    try:
        stored: object = json.loads(pin.definition)
    except ValueError:
        return False
    if not isinstance(stored, dict) or "_meta" in stored:
        return False
    old = _dumps(_body(definition, meta=False))
    return pin.digest == hashlib.sha256(old.encode()).hexdigest()


def _changed_fields(old: str, new: Mapping[str, Any]) -> list[str]:
    before: dict[str, Any] = json.loads(old)
    # A pin from before `_meta` was covered says nothing about it: compare it in its own form.
    after = json.loads(_dumps(_body(new, meta="_meta" in before)))  # through JSON, as `before` went
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def definition_diff(old: str | None, new: Mapping[str, Any]) -> str:
    """A unified diff of two definitions, pretty-printed, for people."""
    new_text = json.dumps(json.loads(canonical(new)), indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    old_text = json.dumps(json.loads(old), indent=2, sort_keys=True, ensure_ascii=False).splitlines() if old else []
    return "\n".join(difflib.unified_diff(old_text, new_text, "approved", "offered", lineterm=""))


@dataclass(frozen=True, slots=True)
class Hold:
    """A tool kept out of the catalog until someone approves it."""

    name: str
    server: str
    tool: str
    kind: HoldKind
    reason: str
    definition: Mapping[str, Any]
    approved: str | None = None
    """The canonical JSON of the approved definition, when there is one."""

    def message(self) -> str:
        """What a client is told when it calls the tool."""
        return (
            f"Tool {self.name} is quarantined: {self.reason}. "
            f"An operator can review and approve it with: switchyard approve --server {self.server} {self.tool}"
        )


class Pinning:
    """Applies pins and start-up scanning to a freshly built catalog."""

    def __init__(self, config: GatewayConfig, store: PinStore | None, scan: Scan | None = None) -> None:
        self.config = config
        self.store = store
        self.scan = scan
        self._scan_cache: dict[str, str | None] = {}
        self._scan_context: frozenset[tuple[str, str]] = frozenset()
        """The tools (server, name) the cached verdicts were made among: cross-server rules (shadowing, name
        collisions) read the other servers' tools, so a verdict holds only while they are the same."""

    def mode(self, server: str) -> str:
        """The pin mode of one server: its own, else the gateway default."""
        cfg = self.config.servers.get(server)
        return (cfg.pin if cfg is not None and cfg.pin is not None else None) or self.config.switchyard.pin

    def _flag(self, entry: Entry, d: str) -> str | None:
        if self.scan is None:
            return None
        if d not in self._scan_cache:
            self._scan_cache[d] = self.scan(entry.server, entry.definition)
        return self._scan_cache[d]

    def review(self, catalog: Catalog) -> Catalog:
        """Return `catalog` with held tools moved to `quarantined`; pins new servers on first use."""
        holds: dict[str, Hold] = {}
        new_pins: list[Pin] = []
        by_server: dict[str, list[Entry]] = {}
        for entry in catalog.tools.values():
            by_server.setdefault(entry.server, []).append(entry)
        context = frozenset((e.server, e.original) for e in catalog.tools.values())
        if context != self._scan_context:
            # Another server's tools came or went: a tool clean beside the old set may shadow one of the new.
            self._scan_cache.clear()
            self._scan_context = context
        now = time.time()
        for server, entries in by_server.items():
            mode = self.mode(server)
            # Read whatever the mode: under `off` nothing is pinned or enforced, but a person's approval of a
            # tool the scanner holds still counts.
            pins = self.store.pins(server) if self.store is not None else {}
            first_use = not pins
            for entry in entries:
                d = digest(entry.definition)
                pin = pins.get(entry.original)
                if pin is not None and pin.digest != d and _predates_meta(pin, entry.definition):
                    pin = replace(pin, digest=d, definition=canonical(entry.definition))
                    new_pins.append(pin)  # the same approval, re-recorded in the form that covers `_meta`
                approved_by_person = pin is not None and pin.digest == d and pin.source == "approve"
                flag = None if approved_by_person else self._flag(entry, d)
                hold: Hold | None = None
                changed = pin is not None and pin.digest != d and mode != "off"
                if changed:
                    assert pin is not None
                    fields = ", ".join(_changed_fields(pin.definition, entry.definition)) or "definition"
                    reason = f"its definition changed since it was approved ({fields})"
                    if flag is not None:
                        reason = f"{reason}; {flag}"
                    if mode == "strict" or flag is not None:
                        hold = Hold(
                            entry.name, server, entry.original, "changed", reason, entry.definition, pin.definition
                        )
                    else:
                        logger.warning(
                            "server %s: tool %s: %s (pin mode warn: still served)", server, entry.original, reason
                        )
                elif flag is not None:
                    hold = Hold(
                        entry.name,
                        server,
                        entry.original,
                        "finding",
                        flag,
                        entry.definition,
                        pin.definition if pin else None,
                    )
                elif mode == "off" or pin is not None:
                    pass
                elif first_use or mode == "warn":
                    new_pins.append(Pin(server, entry.original, d, canonical(entry.definition), now))
                    if not first_use:
                        logger.warning(
                            "server %s: new tool %s admitted after scanning (pin mode warn)", server, entry.original
                        )
                else:
                    hold = Hold(
                        entry.name,
                        server,
                        entry.original,
                        "new",
                        "it is new on a server whose tools are pinned",
                        entry.definition,
                    )
                if hold is not None:
                    holds[entry.name] = hold
        if new_pins and self.store is not None:
            self.store.put_pins(new_pins)
        if not holds:
            return catalog
        for hold in holds.values():
            logger.warning("quarantined %s: %s", hold.name, hold.reason)
        tools = {name: e for name, e in catalog.tools.items() if name not in holds}
        return replace(catalog, tools=tools, quarantined=holds)

    def approve(self, holds: list[Hold]) -> None:
        """Record that a person approved these definitions as offered now.

        Raises:
            StoreError: there is no store to record them in (pinning and start-up scanning both off, so
                nothing can have been held).
        """
        if not holds:
            return
        if self.store is None:
            raise StoreError("no store is open to record approvals in (pinning and start-up scanning are off)")
        now = time.time()
        self.store.put_pins(
            [Pin(h.server, h.tool, digest(h.definition), canonical(h.definition), now, "approve") for h in holds]
        )
