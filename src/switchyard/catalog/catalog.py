"""The federated catalog: every server's tools, prompts, resources and templates under one namespace.

Owns: turning per-server snapshots into one immutable view with client-facing names, the reverse map back to
(server, original name), resource routing by URI (owner map, then templates), per-server allow/deny filters,
and the list of collisions with how each was resolved. Pure: no I/O. Does not own fetching (upstream/) or
per-client reshaping (transforms, policy).
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mcp.shared.uri_template import InvalidUriTemplate, UriTemplate

from switchyard.catalog.naming import federated_name, short_hash
from switchyard.config import GatewayConfig, ToolFilter
from switchyard.errors import NotFound, Quarantined
from switchyard.upstream.base import JsonObject, UpstreamSnapshot

logger = logging.getLogger("switchyard.catalog")

__all__ = ["Catalog", "Collision", "Entry", "build_catalog", "not_found"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One tool or prompt as the client sees it: its federated name, owner and upstream definition."""

    name: str
    server: str
    original: str
    definition: JsonObject

    def public(self) -> JsonObject:
        """The definition with the federated name, ready for a list result."""
        return {**self.definition, "name": self.name}


@dataclass(frozen=True, slots=True)
class Collision:
    """Two servers offered the same name or URI; `winner` keeps it, the others were renamed or hidden."""

    kind: str
    name: str
    servers: tuple[str, ...]
    resolution: str

    def __str__(self) -> str:
        return f"{self.kind} '{self.name}' offered by {', '.join(self.servers)}: {self.resolution}"


@dataclass(frozen=True)
class Catalog:
    """An immutable federated view. Rebuilt, never mutated, when a server's lists change."""

    tools: Mapping[str, Entry] = field(default_factory=dict[str, Entry])
    prompts: Mapping[str, Entry] = field(default_factory=dict[str, Entry])
    resources: tuple[tuple[str, JsonObject], ...] = ()
    templates: tuple[tuple[str, JsonObject], ...] = ()
    collisions: tuple[Collision, ...] = ()
    resource_owner: Mapping[str, str] = field(default_factory=dict[str, str])
    quarantined: Mapping[str, Any] = field(default_factory=dict[str, Any])
    """Tools held out of the catalog (by pinning or scanning), by federated name: `pins.Hold` values."""
    _compiled_templates: tuple[tuple[str, UriTemplate], ...] = ()

    def tool(self, name: str) -> Entry:
        """The tool with this federated name.

        Raises:
            NotFound: no such tool.
        """
        entry = self.tools.get(name)
        if entry is None:
            hold = self.quarantined.get(name)
            if hold is not None:
                raise Quarantined(hold.message(), {"reason": hold.reason, "kind": hold.kind})
            raise not_found("tools", name)
        return entry

    def prompt(self, name: str) -> Entry:
        """The prompt with this federated name.

        Raises:
            NotFound: no such prompt.
        """
        entry = self.prompts.get(name)
        if entry is None:
            raise not_found("prompts", name)
        return entry

    def owner_of(self, uri: str) -> str:
        """The server a resource URI is routed to: a listed resource first, then the first matching template.

        Raises:
            NotFound: no server offers this URI.
        """
        owner = self.resource_owner.get(uri)
        if owner is not None:
            return owner
        for server, template in self._compiled_templates:
            if template.match(uri) is not None:
                return server
        raise not_found("resources", uri)


def _literal_chars(template: UriTemplate) -> int:
    """How much of a template is fixed text (its expressions removed): a measure of how specific it is."""
    return len(re.sub(r"\{[^}]*\}", "", template.template))


def _allowed(name: str, rules: ToolFilter) -> bool:
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in rules.deny):
        return False
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in rules.allow)


def _name_items(
    kind: str,
    items: Iterable[tuple[str, JsonObject]],
    *,
    separator: str,
    prefix: bool,
    collisions: list[Collision],
) -> dict[str, Entry]:
    """Federated names for `items`, listed in their order.

    On a collision the earlier server (configuration order) keeps the name, except that an item whose own name
    holds the separator never takes a name from one whose name does not: `github` offering `enterprise-x`
    (separator `-`) must not take `github-enterprise-x` from the `github-enterprise` server's `x`. The other
    item is prefixed, else gets a short hash of its server and name, with the configured separator; stable
    however the other servers' lists change (the hash names only the item itself). Every item's own name is
    claimed before any other gets a replacement, so a replacement never takes a name a server really offers
    (with prefixing off, server `b`'s renamed `x` must not take `b__x` from the first server's real `b__x`).
    """
    listed = list(items)
    # Items whose names hold no separator claim their names first; the order of the result stays as listed.
    claim_order = sorted(range(len(listed)), key=lambda i: separator in str(listed[i][1].get("name", "")))
    names: dict[int, str] = {}
    taken: dict[str, int] = {}
    losers: list[tuple[int, str]] = []
    for i in claim_order:
        server, item = listed[i]
        name = federated_name(server, str(item.get("name", "")), separator=separator, prefix=prefix)
        if name in taken:
            losers.append((i, name))
            continue
        names[i] = name
        taken[name] = i
    for i, name in losers:
        server, item = listed[i]
        original = str(item.get("name", ""))
        keeper = listed[taken[name]][0]
        alt = federated_name(server, original, separator=separator, prefix=True)
        salt = 0
        while alt in taken:
            tag = short_hash(server, original, *([str(salt)] if salt else []))
            alt = federated_name(server, f"{original}_{tag}", separator=separator, prefix=True)
            salt += 1
        collisions.append(Collision(kind, name, (keeper, server), f"{keeper} keeps it; {server}'s is {alt}"))
        names[i] = alt
        taken[alt] = i
    out: dict[str, Entry] = {}
    for i, (server, item) in enumerate(listed):
        out[names[i]] = Entry(name=names[i], server=server, original=str(item.get("name", "")), definition=item)
    return out


def build_catalog(snapshots: Mapping[str, UpstreamSnapshot | None], config: GatewayConfig) -> Catalog:
    """Federate the servers' snapshots, in configuration order. Servers without a snapshot contribute nothing."""
    naming = config.switchyard.naming
    collisions: list[Collision] = []
    order = [name for name in config.servers if name in snapshots] + [n for n in snapshots if n not in config.servers]
    tool_items: list[tuple[str, JsonObject]] = []
    prompt_items: list[tuple[str, JsonObject]] = []
    resources: list[tuple[str, JsonObject]] = []
    templates: list[tuple[str, JsonObject]] = []
    owner: dict[str, str] = {}
    template_owner: dict[str, str] = {}
    compiled: list[tuple[str, UriTemplate]] = []
    for server in order:
        snap = snapshots[server]
        if snap is None:
            continue
        cfg = config.servers.get(server)
        rules = cfg.tools if cfg is not None else ToolFilter()
        tool_items.extend((server, t) for t in snap.tools if _allowed(str(t.get("name", "")), rules))
        prompt_items.extend((server, p) for p in snap.prompts)
        for res in snap.resources:
            uri = str(res.get("uri", ""))
            if uri in owner:
                collisions.append(Collision("resource", uri, (owner[uri], server), f"routed to {owner[uri]}"))
                continue
            owner[uri] = server
            resources.append((server, res))
        for tpl in snap.templates:
            text = str(tpl.get("uriTemplate", ""))
            if text in template_owner:
                collisions.append(
                    Collision(
                        "resource template", text, (template_owner[text], server), f"routed to {template_owner[text]}"
                    )
                )
                continue
            template_owner[text] = server
            templates.append((server, tpl))
            try:
                compiled.append((server, UriTemplate.parse(text)))
            except (InvalidUriTemplate, ValueError):
                logger.warning("server %s: resource template %r does not parse; no read can reach it", server, text)
                continue
    tools = _name_items("tool", tool_items, separator=naming.separator, prefix=naming.prefix, collisions=collisions)
    prompts = _name_items(
        "prompt", prompt_items, separator=naming.separator, prefix=naming.prefix, collisions=collisions
    )
    return Catalog(
        tools=tools,
        prompts=prompts,
        resources=tuple(resources),
        templates=tuple(templates),
        collisions=tuple(collisions),
        resource_owner=owner,
        # The most specific template first (most literal characters): a later server's `file:///docs/{name}`
        # is not taken over by an earlier one's `file:///{+path}`; ties keep configuration order.
        _compiled_templates=tuple(sorted(compiled, key=lambda st: -_literal_chars(st[1]))),
    )


_UNKNOWN = {"tools": "Unknown tool: {}", "prompts": "Unknown prompt: {}", "resources": "Resource not found: {}"}


def not_found(kind: str, name: str) -> NotFound:
    """The error for an unknown item of `kind` ("tools", "prompts" or "resources"; a resource's `name` is its
    URI). The policy stage raises the same message and data for a hidden one (`errors.Hidden`)."""
    return NotFound(_UNKNOWN[kind].format(name), {"uri": name} if kind == "resources" else None)
