"""The flow policy stage: stops a call that could send data out once a conversation has read both untrusted
content and private data, and asks a human for calls configured `approval: required`.

Owns: the conversation key of a request, the labels of the item called (configuration first, heuristics
otherwise, cached per catalog), the toxic-flow decision, and recording what each result brought into the
conversation (the item's labels, plus what the output guard found in it: an injection is untrusted content,
a secret is private data). Does not own labelling rules or the tracker (security/flows.py), nor how a human is
asked (stages/approval.py).

Conversations: a legacy session (the front sets `LEGACY_SESSION` around each call); on the stateless revision
the id a client sends in `_meta["io.switchyard/conversation"]`; otherwise the principal, forgotten after
`flows.window` seconds of inactivity. Keys are always scoped to the principal. A client-chosen conversation id
is trusted to separate the user's conversations: it is the client, not the model, that sends it.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, Protocol, cast

from switchyard.catalog.catalog import Catalog
from switchyard.config import FlowSettings, GatewayConfig
from switchyard.errors import PolicyDenied, UpstreamError
from switchyard.pipeline.chain import Handler
from switchyard.pipeline.context import CallContext
from switchyard.sealing import Sealer
from switchyard.security.flows import FlowTracker, Labelled, config_labels, label_definition, label_uri
from switchyard.stages.approval import Approvals
from switchyard.stages.audit import note_decision
from switchyard.stages.guards import GUARD_META
from switchyard.upstream.base import JsonObject

__all__ = ["CONVERSATION_META", "LEGACY_SESSION", "FlowStage", "GatewayServices", "conversation_key"]

LEGACY_SESSION: ContextVar[str | None] = ContextVar("switchyard_legacy_session", default=None)
"""Set by the front around a call on a legacy (2025-11-25) session: an id unique to that session."""
CONVERSATION_META = "io.switchyard/conversation"
"""The `_meta` key a stateless client uses to name the conversation a request belongs to."""
_FLOW_METHODS = frozenset({"tools/call", "resources/read", "prompts/get"})
_NONE = Labelled(frozenset())


class GatewayServices(Protocol):
    """What the stage reads from the running gateway (attached once the gateway is built)."""

    @property
    def catalog(self) -> Catalog:
        """The current federated catalog."""
        ...

    @property
    def sealer(self) -> Sealer:
        """Seals `requestState` envelopes."""
        ...


def _without_conversation_meta(ctx: CallContext) -> CallContext:
    """The context without the conversation id in `_meta`: upstreams need not learn it (nor link calls by it)."""
    meta: Any = ctx.params.get("_meta")
    if not isinstance(meta, Mapping) or CONVERSATION_META not in meta:
        return ctx
    kept = {k: v for k, v in cast(Mapping[str, Any], meta).items() if k != CONVERSATION_META}
    params = {k: v for k, v in ctx.params.items() if k != "_meta"}
    if kept:
        params["_meta"] = kept
    return dataclasses.replace(ctx, params=params)


def conversation_key(ctx: CallContext) -> str:
    """The conversation a request belongs to, scoped to its principal (`kind:id`: an API key and a JWT `sub` of
    the same name are two callers)."""
    who = str(ctx.principal)
    session = LEGACY_SESSION.get()
    if session:
        return f"{who}\x00session\x00{session}"
    meta: Any = ctx.params.get("_meta")
    named: Any = cast(Mapping[str, Any], meta).get(CONVERSATION_META) if isinstance(meta, Mapping) else None
    if isinstance(named, str) and 0 < len(named) <= 256:
        return f"{who}\x00conversation\x00{named}"
    return f"{who}\x00principal"


class FlowStage:
    """Flow policy and configured approvals around the rest of the chain (the output guard and dispatch)."""

    def __init__(
        self,
        config: GatewayConfig,
        approvals: Approvals,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.settings: FlowSettings = config.switchyard.flows
        self.approvals = approvals
        self.tracker = FlowTracker(self.settings.window, self.settings.max_conversations, clock)
        self._gateway: GatewayServices | None = None
        self._labels: dict[tuple[str, str, str], Labelled] = {}
        self._labels_of: Catalog | None = None

    def attach(self, gateway: GatewayServices) -> None:
        """Give the stage the running gateway's catalog and sealer."""
        self._gateway = gateway

    @property
    def gateway(self) -> GatewayServices:
        """The attached gateway (a stage used without one fails closed)."""
        if self._gateway is None:
            raise RuntimeError("FlowStage used before a gateway attached it")
        return self._gateway

    def labels(self, ctx: CallContext) -> Labelled:
        """The labels of the tool or resource `ctx` calls."""
        catalog = self.gateway.catalog
        if catalog is not self._labels_of:
            self._labels, self._labels_of = {}, catalog
        key = (ctx.method, ctx.server, ctx.name)  # a resource URI may spell a tool's name: never one entry for both
        found = self._labels.get(key)
        if found is None:
            found = self._labels[key] = self._compute(ctx, catalog)
        return found

    def _compute(self, ctx: CallContext, catalog: Catalog) -> Labelled:
        server = self.config.servers.get(ctx.server)
        configured = server.labels if server is not None else None
        if ctx.method == "resources/read":
            return config_labels(configured, ctx.name) or (label_uri(ctx.name) if self.settings.heuristics else _NONE)
        if ctx.method == "prompts/get":
            return _NONE  # a prompt sends nothing anywhere; what it carries is the output guard's to say (`_record`)
        entry = catalog.tools.get(ctx.name)
        original = entry.original if entry is not None else ctx.original
        chosen = config_labels(configured, original)
        if chosen is not None:
            return chosen
        if entry is None or not self.settings.heuristics:
            return _NONE
        return label_definition(entry.definition)

    def needs_approval(self, ctx: CallContext) -> bool:
        """Whether the configuration requires a human's approval for this tool."""
        server = self.config.servers.get(ctx.server)
        mode = server.approval if server is not None else None
        if mode is None or ctx.method != "tools/call":
            return False
        if isinstance(mode, str):
            return mode == "required"
        original = ctx.original or ctx.name
        return next((m for glob, m in mode.items() if fnmatch.fnmatchcase(original, glob)), "none") == "required"

    def toxic(self, key: str, labelled: Labelled, ctx: CallContext) -> str | None:
        """Why this call completes a toxic flow, or None."""
        if not self.settings.enabled or "egress" not in labelled.labels:
            return None
        conv = self.tracker.get(key)
        if "untrusted" not in conv.seen or "private" not in conv.seen:
            return None
        return (
            f"Flow policy: '{ctx.name}' can send data out ({labelled.explain('egress')}), and this conversation "
            f"has already read untrusted content (from {conv.sources('untrusted')}) and private data (from "
            f"{conv.sources('private')}); injected instructions could be exfiltrating that data."
        )

    async def __call__(self, ctx: CallContext, call_next: Handler) -> JsonObject:
        """Decide before the call (block, ask, or pass); record what the result brought in."""
        if ctx.method not in _FLOW_METHODS or not ctx.server:
            return await call_next(ctx)
        key = conversation_key(ctx)
        ctx = _without_conversation_meta(ctx)
        labelled = self.labels(ctx)
        reasons: list[str] = []
        if self.needs_approval(ctx):
            reasons.append(f"'{ctx.name}' requires approval (configuration).")
        flow = self.toxic(key, labelled, ctx)
        if flow is not None:
            if self.settings.action == "block":
                raise PolicyDenied(f"{flow} The call was blocked.", {"flow": "blocked"})
            if self.settings.action == "audit":
                note_decision("flagged", flow)
            else:
                reasons.append(flow)
        if reasons:
            outcome = await self.approvals.obtain(ctx, self.gateway, " ".join(reasons))
            if not isinstance(outcome, CallContext):
                return outcome
            ctx = outcome
        try:
            result = await call_next(ctx)
        except UpstreamError as exc:
            # The error's text reaches the model as a result's would (an inbox tool failing with a mail in it),
            # and so do the guard's findings in it.
            brought = _brought(exc.guard)
            self.tracker.record(key, brought | labelled.labels, ctx.name)  # pyright: ignore[reportArgumentType]
            raise
        self._record(key, ctx, labelled, result)
        return result

    def _record(self, key: str, ctx: CallContext, labelled: Labelled, result: JsonObject) -> None:
        meta: Any = result.get("_meta")
        brought = _brought(cast(Mapping[str, Any], meta).get(GUARD_META) if isinstance(meta, Mapping) else None)
        if result.get("resultType") == "input_required":  # the call's own labels come with its final result
            if brought:
                self.tracker.record(key, brought, ctx.name)  # pyright: ignore[reportArgumentType]
            return
        self.tracker.record(key, brought | labelled.labels, ctx.name)  # pyright: ignore[reportArgumentType]


def _brought(guard: Any) -> set[str]:
    """The labels the guard's findings bring into a conversation: an injection makes it untrusted, a secret
    private. They only ever add taint, so an upstream imitating the guard's entry cannot clear a conversation."""
    brought: set[str] = set()
    if isinstance(guard, Mapping):
        found = cast(Mapping[str, Any], guard)
        if found.get("injection"):
            brought.add("untrusted")
        if found.get("secrets"):
            brought.add("private")
    return brought
