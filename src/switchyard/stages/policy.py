"""Visibility and policy: which servers, tools, prompts and resources each principal may see and call.

Owns: compiling `switchyard.policy` into `Policy` (a pure decision: principal × kind × server × name → bool),
the list filters the front applies to `tools/list`, `prompts/list` and the resource lists, and `PolicyStage`,
which refuses calls to anything the caller may not see. Does not own authentication (server/auth.py) or the
per-server `tools` filter of the configuration (catalog/, applied to everyone before policy).

A hidden item is indistinguishable from a nonexistent one: `PolicyStage` raises `errors.Hidden`, a `NotFound`
whose code, message and data are exactly those the catalog gives for an unknown name, so guessing names
reveals nothing. Only the audit log records that policy, not absence, refused the call.

Rules: a rule applies to a principal when it names the principal (`kind:id`, or the bare id, which names that
id of any kind: `identity.principal_names`) or one of its groups ("*" names everyone). An item is visible when
at least one applicable rule allows it (server glob AND item glob) and no applicable rule denies it (server OR
item deny glob): deny wins. A principal no rule applies to gets `policy.default`, except the local user, who is
always allowed unless a rule names it.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import unquote, urlsplit, urlunsplit

from switchyard.catalog.catalog import Catalog, not_found
from switchyard.config import AccessFilter, PolicyRule, PolicySettings
from switchyard.errors import Hidden
from switchyard.identity import Principal, is_qualified, principal_names
from switchyard.pipeline.chain import Handler
from switchyard.pipeline.context import CallContext
from switchyard.upstream.base import JsonObject

__all__ = ["ItemKind", "Policy", "PolicyStage", "item_kind", "unqualified_names"]

ItemKind = Literal["tools", "prompts", "resources"]


def _compile(patterns: Iterable[str]) -> re.Pattern[str] | None:
    parts = [fnmatch.translate(p) for p in patterns]
    return re.compile("|".join(parts)) if parts else None


@dataclass(frozen=True, slots=True)
class _Globs:
    allow: re.Pattern[str] | None
    deny: re.Pattern[str] | None

    @classmethod
    def of(cls, f: AccessFilter) -> _Globs:
        return cls(_compile(f.allow), _compile(f.deny))

    def allows(self, value: str) -> bool:
        return self.allow is not None and self.allow.match(value) is not None

    def denies(self, value: str) -> bool:
        return self.deny is not None and self.deny.match(value) is not None


@dataclass(frozen=True, slots=True)
class _Rule:
    principals: frozenset[str]
    groups: frozenset[str]
    servers: _Globs
    items: Mapping[str, _Globs]

    @classmethod
    def of(cls, rule: PolicyRule) -> _Rule:
        items = {"tools": _Globs.of(rule.tools), "prompts": _Globs.of(rule.prompts)}
        items["resources"] = _Globs.of(rule.resources)
        return cls(frozenset(rule.principals), frozenset(rule.groups), _Globs.of(rule.servers), items)

    def applies(self, principal: Principal, groups: frozenset[str]) -> bool:
        return (
            "*" in self.principals
            or any(name in self.principals for name in principal_names(principal))
            or bool(self.groups & (groups | {"*"}))
        )


def unqualified_names(settings: PolicySettings) -> list[str]:
    """The principal names in `settings` written without a kind (rules' `principals`, `groups` keys), apart from
    "*", "local" and "anonymous": each names that id whether it is an API key's principal or a JWT `sub`."""
    names = [n for rule in settings.rules for n in rule.principals] + list(settings.groups)
    return sorted({n for n in names if not is_qualified(n) and n not in ("*", "local", "anonymous")})


def item_kind(method: str, params: Mapping[str, Any]) -> ItemKind | None:
    """Which kind of item a forwarded method addresses (None for methods policy does not gate)."""
    if method == "tools/call":
        return "tools"
    if method == "prompts/get":
        return "prompts"
    if method.startswith("resources/"):
        return "resources"
    if method == "completion/complete":
        ref: Any = params.get("ref")
        is_prompt = isinstance(ref, Mapping) and cast(Mapping[str, Any], ref).get("type") == "ref/prompt"
        return "prompts" if is_prompt else "resources"
    return None


class Policy:
    """The compiled `switchyard.policy`: pure decisions, no I/O, safe to share."""

    def __init__(self, settings: PolicySettings) -> None:
        self.settings = settings
        self._rules = tuple(_Rule.of(r) for r in settings.rules)
        self._groups = {pid: frozenset(gs) for pid, gs in settings.groups.items()}
        self.open = not self._rules and settings.default == "allow"
        """True when everyone may see everything (no rules, default allow): every check is skipped."""

    def groups_of(self, principal: Principal) -> frozenset[str]:
        """The principal's own groups plus those `policy.groups` gives it (by its id or `kind:id`)."""
        extra = [self._groups[name] for name in principal_names(principal) if name in self._groups]
        return principal.groups.union(*extra) if extra else principal.groups

    def allows(self, principal: Principal, kind: ItemKind, server: str, name: str) -> bool:
        """Whether `principal` may see and use the item `name` (federated name or URI) of `server`.

        A URI must be allowed in each of its forms (`uri_forms`): as written, percent-decoded, and with its
        dot segments resolved, since a server's routing decodes what a glob on the raw text would not see
        (`db://tables/%73alaries` is `db://tables/salaries` to the server that reads it).
        """
        if self.open:
            return True
        if kind == "resources":
            return all(self._allows(principal, kind, server, form) for form in uri_forms(name))
        return self._allows(principal, kind, server, name)

    def _allows(self, principal: Principal, kind: ItemKind, server: str, name: str) -> bool:
        groups = self.groups_of(principal)
        rules = [r for r in self._rules if r.applies(principal, groups)]
        if not rules:
            return principal.kind == "local" or self.settings.default == "allow"
        allowed = False
        for rule in rules:
            globs = rule.items[kind]
            if rule.servers.denies(server) or globs.denies(name):
                return False
            allowed = allowed or (rule.servers.allows(server) and globs.allows(name))
        return allowed

    def visible_tools(self, principal: Principal, tools: Sequence[JsonObject], catalog: Catalog) -> list[JsonObject]:
        """The tool list filtered for `principal`. Names the catalog does not own (meta-tools) stay."""
        if self.open:
            return list(tools)
        out: list[JsonObject] = []
        for tool in tools:
            entry = catalog.tools.get(str(tool.get("name", "")))
            if entry is None or self.allows(principal, "tools", entry.server, entry.name):
                out.append(tool)
        return out

    def visible_prompts(
        self, principal: Principal, prompts: Sequence[JsonObject], catalog: Catalog
    ) -> list[JsonObject]:
        """The prompt list filtered for `principal`."""
        if self.open:
            return list(prompts)
        out: list[JsonObject] = []
        for prompt in prompts:
            entry = catalog.prompts.get(str(prompt.get("name", "")))
            if entry is None or self.allows(principal, "prompts", entry.server, entry.name):
                out.append(prompt)
        return out

    def visible_resources(
        self, principal: Principal, items: Iterable[tuple[str, JsonObject]], key: str = "uri"
    ) -> list[JsonObject]:
        """(server, resource) pairs filtered for `principal`; `key` is "uri" or "uriTemplate"."""
        return [r for s, r in items if self.open or self.allows(principal, "resources", s, str(r.get(key, "")))]

    def visible_catalog(self, principal: Principal, catalog: Catalog) -> Catalog:
        """The catalog with hidden tools removed, for answering `search_tools`."""
        if self.open:
            return catalog
        tools = {n: e for n, e in catalog.tools.items() if self.allows(principal, "tools", e.server, n)}
        return Catalog(
            tools=tools,
            prompts=catalog.prompts,
            resources=catalog.resources,
            templates=catalog.templates,
            collisions=catalog.collisions,
            resource_owner=catalog.resource_owner,
            quarantined=catalog.quarantined,
            _compiled_templates=catalog._compiled_templates,  # pyright: ignore[reportPrivateUsage]
        )


def uri_forms(uri: str) -> frozenset[str]:
    """`uri` as written, percent-decoded, and decoded with `.` and `..` path segments resolved."""
    decoded = unquote(uri)
    forms = {uri, decoded}
    parts = urlsplit(decoded)
    if "." in parts.path:
        path = posixpath.normpath(parts.path)
        if parts.path.endswith("/") and not path.endswith("/"):
            path += "/"
        forms.add(urlunsplit(parts._replace(path=path)))
    return frozenset(forms)


class PolicyStage:
    """Refuses a call to an item its caller may not see, with the error a nonexistent name would get."""

    def __init__(self, policy: Policy, charge: Callable[[CallContext], None] | None = None) -> None:
        self.policy = policy
        self._charge = charge
        """Spends what a call to an unknown name spends (the rate limiter's per-principal token) before a
        hidden item is refused, so the two stay indistinguishable."""

    async def __call__(self, ctx: CallContext, call_next: Handler) -> JsonObject:
        """Pass `ctx` on if its principal may use the item; raise `errors.Hidden` otherwise."""
        if self.policy.open or not ctx.server:
            return await call_next(ctx)  # nothing to hide, or the name did not resolve (dispatch reports it)
        kind = item_kind(ctx.method, ctx.params)
        if kind is not None and not self.policy.allows(ctx.principal, kind, ctx.server, ctx.name):
            if self._charge is not None:
                self._charge(ctx)
            unknown = not_found(kind, ctx.name)  # exactly what a nonexistent name gets: message and data
            raise Hidden(unknown.message, f"policy hides {kind[:-1]} from {ctx.principal}", unknown.data)
        return await call_next(ctx)
