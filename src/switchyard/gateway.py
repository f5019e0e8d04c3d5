"""`Gateway`: composes configuration, upstreams, the catalog and the stage chain; owns start-up and shutdown.

Owns: starting every upstream in parallel (a slow or broken one never blocks the others), rebuilding the
catalog when a server's lists change and telling subscribers what changed, keeping a restarting server's last
lists in the catalog for `restart.keep_listed` seconds (so a restart that brings the same lists back changes
nothing a client sees), dispatching requests to the owning upstream through the stage chain, and draining
requests in flight when `serve` is stopped. Does not own: wire protocol (server/), naming (catalog/), restarts
themselves (upstream/client.py), signals (server/signals.py), or any policy decision (stages/).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Generator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, cast

import anyio
import anyio.abc
import anyio.to_thread

from switchyard.catalog.catalog import Catalog, build_catalog
from switchyard.catalog.pins import Pinning
from switchyard.catalog.scanning import make_scan
from switchyard.config import GatewayConfig, HttpServerConfig, StdioServerConfig
from switchyard.errors import GatewayError, InvalidRequest, Quarantined, UpstreamUnavailable
from switchyard.exposure import Exposure, ToolFinder
from switchyard.identity import LOCAL, Principal
from switchyard.pipeline.chain import Handler, Stage, compose
from switchyard.pipeline.context import CallContext
from switchyard.sealing import Sealer
from switchyard.stages import attach_stages, build_stages
from switchyard.stages.policy import Policy
from switchyard.store.audit import SqliteAuditStore
from switchyard.store.base import PinStore
from switchyard.store.sqlite import SqliteStore
from switchyard.upstream.base import (
    JsonObject,
    ProgressCallback,
    Upstream,
    UpstreamSnapshot,
    UpstreamState,
    unavailable,
)
from switchyard.upstream.bridge import PROGRESS_SCREEN
from switchyard.upstream.client import ClientUpstream
from switchyard.upstream.http import HttpUpstream
from switchyard.upstream.stdio import StdioUpstream

__all__ = ["CatalogListener", "Gateway"]

logger = logging.getLogger("switchyard.gateway")

CatalogListener = Callable[[frozenset[str]], Awaitable[None]]
"""Told which client-visible lists changed: a subset of {"tools", "prompts", "resources"}."""
ResourceListener = Callable[[str], Awaitable[None]]
"""Told the URI of a resource an upstream reported as updated."""

_RESERVED_META_PREFIX = "io.modelcontextprotocol/"
# The client's per-request log opt-in (2026-07-28) is the one reserved key passed on: it asks the upstream too.
LOG_LEVEL_META_KEY = "io.modelcontextprotocol/logLevel"
_INTERACTIVE = frozenset({"tools/call", "prompts/get", "resources/read"})
_UNRESOLVED = "switchyard.unresolved"
"""`CallContext.extras` key: the error that resolving the request's item raised (raised again at dispatch)."""
_LOCAL = "switchyard.local_answer"
"""`CallContext.extras` key of a call the gateway answers itself (`answer_locally`)."""


def _forwardable_meta(params: Mapping[str, Any]) -> dict[str, Any]:
    """The client's params minus what the upstream session sets itself (protocol keys, progress token)."""
    out = dict(params)
    meta: Any = out.get("_meta")
    if isinstance(meta, Mapping):
        kept: dict[str, Any] = {
            str(k): v
            for k, v in cast(Mapping[Any, Any], meta).items()
            if isinstance(k, str)
            and k != "progressToken"
            and (not k.startswith(_RESERVED_META_PREFIX) or k == LOG_LEVEL_META_KEY)
        }
        if kept:
            out["_meta"] = kept
        else:
            out.pop("_meta")
    return out


class Gateway:
    """One gateway instance: a set of upstreams behind one federated catalog."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        upstreams: Mapping[str, Upstream] | None = None,
        stages: Sequence[Stage] | None = None,
        store: PinStore | None = None,
    ) -> None:
        """Compose a gateway.

        Args:
            config: the validated configuration.
            upstreams: upstreams to use instead of those the configuration describes (tests, embedding).
            stages: the stage chain; None builds it from configuration (audit, policy, rate limits), while an
                explicit sequence (even empty) is used as given.
            store: the pin store, instead of opening the configured one.
        """
        self.config = config
        self._listeners: list[CatalogListener] = []
        self._resource_listeners: list[ResourceListener] = []
        self.upstreams: dict[str, Upstream] = dict(upstreams) if upstreams is not None else self._make_upstreams(config)
        self.catalog: Catalog = Catalog()
        self._public: dict[str, list[JsonObject]] = {"tools": [], "prompts": [], "resources": []}
        self.audit_store: SqliteAuditStore | None = None
        """The audit log this gateway opened from configuration (None when stages were given or audit is off)."""
        if stages is None:
            built = build_stages(config)
            stages, self.policy, self.audit_store = built.stages, built.policy, built.audit_store
        else:
            self.policy = Policy(config.switchyard.policy)
        self._handler: Handler = compose(stages, self._dispatch)
        self.store = store if store is not None else self._open_store(config)
        self.pinning = Pinning(config, self.store)
        finder = ToolFinder(config) if config.switchyard.exposure != "all" else None
        self.exposure = Exposure(config, finder)
        mrtr = config.switchyard.mrtr
        self.sealer = Sealer(mrtr.keys, ttl=mrtr.ttl)
        attach_stages(stages, self)  # stages that read the catalog or seal state (flows, approvals)
        self._tg: anyio.abc.TaskGroup | None = None
        self._startup_deadline: float | None = None
        """When list requests stop waiting for servers still starting: start-up time + `timeouts.startup`."""
        self.started = anyio.Event()
        """Set once every server's first connection attempt has finished (up or failed)."""
        self._down_since: dict[str, float] = {}
        """Servers that have been up and are down now (restarting): since when (`time.monotonic()`)."""
        self._unlisted: set[str] = set()
        """Those of them down longer than `restart.keep_listed`: their items are out of the catalog."""
        self._holds_changed = anyio.Event()
        self._active = 0
        """Requests in the stage chain right now."""
        self._idle: anyio.Event | None = None
        """Made by `drain` while requests are in flight, set when the last one leaves (none per request)."""
        self.stopping = False
        """Set by `drain`: new requests are refused ("the gateway is shutting down")."""

    # --- construction ------------------------------------------------------------------------------------------

    def _make_upstreams(self, config: GatewayConfig) -> dict[str, Upstream]:
        settings = config.switchyard
        common: dict[str, Any] = {
            "connect_timeout": settings.timeouts.connect,
            "restart": settings.restart,
            "listener": self._on_upstream_change,
            "resource_listener": self._on_resource_updated,
        }
        out: dict[str, Upstream] = {}
        for name, cfg in config.active_servers().items():
            if isinstance(cfg, StdioServerConfig):
                out[name] = StdioUpstream(name, cfg, shutdown_grace=settings.timeouts.shutdown_grace, **common)
            elif isinstance(cfg, HttpServerConfig):  # pyright: ignore[reportUnnecessaryIsInstance]
                out[name] = HttpUpstream(name, cfg, **common)
        return out

    @staticmethod
    def _open_store(config: GatewayConfig) -> PinStore | None:
        """The store, when pinning is on for any server or start-up scanning can hold a tool (its approval is
        kept there too); a store that cannot open is a start-up error."""
        modes = {config.switchyard.pin} | {c.pin for c in config.servers.values() if c.pin is not None}
        if modes == {"off"} and not config.switchyard.scan.on_start:
            return None
        return SqliteStore(config.switchyard.store.resolved_path)

    def add_listener(self, listener: CatalogListener) -> Callable[[], None]:
        """Be told when client-visible lists change. Returns a function that removes the listener."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def add_resource_listener(self, listener: ResourceListener) -> None:
        """Be told when an upstream reports a resource updated."""
        self._resource_listeners.append(listener)

    def public(self, kind: str) -> list[JsonObject]:
        """The client-facing list of "tools" or "prompts", in catalog order."""
        return self._public[kind]

    async def settled(self) -> None:
        """Wait (bounded by the start-up wait) until every server had its first attempt.

        List requests call this so a client that lists right after connecting sees every server that comes up
        in time, instead of an empty catalog.
        """
        if self.started.is_set():
            return
        if self._startup_deadline is None:  # not running (in-process use): wait the whole start-up wait
            self._startup_deadline = anyio.current_time() + self.config.switchyard.timeouts.startup
        with anyio.move_on_after(max(0.0, self._startup_deadline - anyio.current_time())):
            await self.started.wait()

    async def _on_resource_updated(self, uri: str) -> None:
        for listener in list(self._resource_listeners):
            try:
                await listener(uri)
            except Exception:
                logger.exception("resource listener failed")

    # --- lifecycle ----------------------------------------------------------------------------------------------

    @asynccontextmanager
    async def running(self, *, wait: bool = False) -> AsyncGenerator[Gateway, None]:
        """Run every upstream in the background for the duration of the block; stop them all on exit.

        With `wait=True`, enter the block only after every server's first connection attempt has finished
        (each bounded by the connect timeout), so a broken server delays start-up by at most that timeout.
        """
        if self.audit_store is not None:
            self.audit_store.start()  # a log that cannot open is a start-up error, like the pin store
        async with anyio.create_task_group() as tg:
            self._tg = tg
            self._startup_deadline = anyio.current_time() + self.config.switchyard.timeouts.startup
            for upstream in self.upstreams.values():
                if isinstance(upstream, ClientUpstream):
                    tg.start_soon(upstream.run, name=f"upstream-{upstream.name}")

            async def mark_started() -> None:
                await self.wait_ready()
                self.rebuild()
                self.started.set()

            tg.start_soon(mark_started)
            tg.start_soon(self._expire_holds)
            if self.store is not None:
                tg.start_soon(self._watch_store)
            if wait:
                await self.started.wait()
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()
                if self.exposure.finder is not None:
                    self.exposure.finder.close()
                if self.audit_store is not None:
                    # Drain the queued audit rows off the event loop; shielded so a cancelled run still writes them.
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(self.audit_store.close)

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `fn` in the background for as long as the gateway runs (calls parked on client input)."""
        if self._tg is None:
            raise RuntimeError("the gateway is not running")
        self._tg.start_soon(fn)

    def era_of(self, server: str) -> str | None:
        """The protocol era an upstream speaks, once it has been up."""
        upstream = self.upstreams.get(server)
        snap = upstream.snapshot if upstream is not None else None
        return snap.era if snap is not None else None

    async def _watch_store(self) -> None:
        """Rebuild when another process (`switchyard approve`) changes the store, so approvals apply live."""
        assert self.store is not None
        seen = self.store.data_version()
        while True:
            await anyio.sleep(1.0)
            version = self.store.data_version()
            if version != seen:
                seen = version
                await self._on_catalog_inputs_changed("store")

    async def wait_ready(self, timeout: float | None = None) -> dict[str, bool]:
        """Wait for every server's first attempt (in parallel); returns which came up."""
        limit = timeout if timeout is not None else self.config.switchyard.timeouts.connect + 1.0
        results: dict[str, bool] = {}

        async def one(name: str, upstream: Upstream) -> None:
            results[name] = await upstream.wait_ready(limit)

        async with anyio.create_task_group() as tg:
            for name, upstream in self.upstreams.items():
                tg.start_soon(one, name, upstream)
        return results

    # --- catalog ------------------------------------------------------------------------------------------------

    def _listed_snapshots(self) -> dict[str, UpstreamSnapshot | None]:
        """What each server contributes to the catalog: its snapshot while up; the last one while it restarts,
        for up to `restart.keep_listed` seconds; nothing for a server that never came up or stays down."""
        keep = self.config.switchyard.restart.keep_listed
        now = time.monotonic()
        out: dict[str, UpstreamSnapshot | None] = {}
        before = (dict(self._down_since), set(self._unlisted))
        for name, upstream in self.upstreams.items():
            snap, state = upstream.snapshot, upstream.state
            if state is UpstreamState.UP:
                self._down_since.pop(name, None)
                self._unlisted.discard(name)
                out[name] = snap
                continue
            if snap is None or state is UpstreamState.STOPPED:
                self._down_since.pop(name, None)
                out[name] = None
                continue
            since = self._down_since.setdefault(name, now)
            if now - since < keep:
                if since == now:
                    logger.info(
                        "server %s: down; its tools, prompts and resources stay listed for up to %g s while the "
                        "gateway brings it back (calls meanwhile get an error naming it)",
                        name,
                        keep,
                    )
                out[name] = snap
                continue
            if name not in self._unlisted and keep > 0:
                logger.warning(
                    "server %s: down for more than %g s; its tools, prompts and resources are unlisted until it is "
                    "back",
                    name,
                    keep,
                )
            self._unlisted.add(name)
            out[name] = None
        if (self._down_since, self._unlisted) != before:
            self._holds_changed.set()
            self._holds_changed = anyio.Event()
        return out

    async def _expire_holds(self) -> None:
        """Rebuild (and tell listeners) when a restarting server has been down for `restart.keep_listed`."""
        keep = self.config.switchyard.restart.keep_listed
        while True:
            changed = self._holds_changed
            now = time.monotonic()
            # The same test as `_listed_snapshots`, so the rebuild below always unlists what it finds expired.
            held = [now - since for name, since in self._down_since.items() if name not in self._unlisted]
            if any(down >= keep for down in held):
                await self._on_catalog_inputs_changed(f"restart.keep_listed ({keep:g} s)")
                continue
            with anyio.move_on_after(min((keep - down for down in held), default=math.inf)):
                await changed.wait()

    def rebuild(self) -> frozenset[str]:
        """Rebuild the catalog from the upstreams' snapshots; returns which public lists changed."""
        snapshots = self._listed_snapshots()
        catalog = build_catalog(snapshots, self.config)
        scan_settings = self.config.switchyard.scan
        self.pinning.scan = make_scan(catalog, scan_settings.quarantine_at) if scan_settings.on_start else None
        catalog = self.pinning.review(catalog)
        if self.exposure.finder is not None:
            self.exposure.finder.sync(catalog, snapshots)
        public = {
            "tools": [e.public() for e in catalog.tools.values()],
            "prompts": [e.public() for e in catalog.prompts.values()],
            "resources": [r for _, r in catalog.resources] + [t for _, t in catalog.templates],
        }
        changed = frozenset(k for k in public if public[k] != self._public[k])
        for collision in catalog.collisions:
            if collision not in self.catalog.collisions:
                logger.warning("collision: %s", collision)
        self.catalog = catalog
        self._public = public
        return changed

    async def _on_upstream_change(self, upstream: Upstream, what: frozenset[str]) -> None:
        await self._on_catalog_inputs_changed(upstream.name)

    async def _on_catalog_inputs_changed(self, cause: str) -> None:
        changed = self.rebuild()
        if changed:
            logger.info("catalog changed (%s) after %s", ", ".join(sorted(changed)), cause)
            for listener in list(self._listeners):
                try:
                    await listener(changed)
                except Exception:
                    logger.exception("catalog listener failed")

    # --- requests -----------------------------------------------------------------------------------------------

    @contextmanager
    def _counted(self) -> Generator[None]:
        """Count one request in the stage chain for the duration of the block, so `drain` can wait for it."""
        self._active += 1
        try:
            yield
        finally:
            self._active -= 1
            if self._active == 0 and self._idle is not None:
                self._idle.set()

    async def drain(self, timeout: float) -> int:
        """Refuse new requests from now on and wait up to `timeout` seconds for those in flight to finish.

        Returns how many are still in flight (0 when all finished in time).
        """
        self.stopping = True
        if self._active:
            if self._idle is None or self._idle.is_set():
                self._idle = anyio.Event()
            with anyio.move_on_after(timeout):
                await self._idle.wait()
        return self._active

    def _unavailable(self, server: str, upstream: Upstream) -> UpstreamUnavailable:
        """Why a call cannot reach `upstream` now, naming it and saying what the gateway is doing about it."""
        return unavailable(server, upstream.state, upstream.last_error, reconnects=isinstance(upstream, HttpUpstream))

    async def handle(self, ctx: CallContext) -> JsonObject:
        """Run one request through the stage chain to its upstream."""
        with self._counted():
            return await self._handler(ctx)

    async def request(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        *,
        era: str = "",
        principal: Principal = LOCAL,
        client_info: Mapping[str, Any] | None = None,
        client_capabilities: Mapping[str, Any] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> JsonObject:
        """Resolve and run one request through the stage chain.

        A request whose item does not resolve (unknown or quarantined name) still passes through the chain,
        so audit records it, policy can hide a quarantined tool's existence, and limits count guesses; the
        resolution error is raised at dispatch.
        """
        try:
            ctx = self.context(
                method,
                params,
                era=era,
                principal=principal,
                client_info=client_info,
                client_capabilities=client_capabilities,
                on_progress=on_progress,
            )
        except GatewayError as exc:
            p: Mapping[str, Any] = params or {}
            name = p.get("name", p.get("uri", ""))
            hold: Any = self.catalog.quarantined.get(str(name)) if isinstance(exc, Quarantined) else None
            ctx = CallContext(
                method=method,
                name=str(name),
                params=p,
                server=str(getattr(hold, "server", "")),
                era=era,
                principal=principal,
                client_info=client_info,
                started=time.monotonic(),
                extras={_UNRESOLVED: exc},
            )
        with self._counted():
            return await self._handler(ctx)

    async def answer_locally(
        self,
        name: str,
        params: Mapping[str, Any],
        answer: Callable[[], Awaitable[JsonObject]],
        *,
        era: str = "",
        principal: Principal = LOCAL,
        client_info: Mapping[str, Any] | None = None,
    ) -> JsonObject:
        """Run a `tools/call` the gateway answers itself (the `search_tools` meta-tool) through the stage chain,
        so it is audited, rate limited and guarded like any call; `answer` takes the place of the upstream."""
        ctx = CallContext(
            method="tools/call",
            name=name,
            params=params,
            server="",
            original=name,
            era=era,
            principal=principal,
            client_info=client_info,
            started=time.monotonic(),
            extras={_LOCAL: answer},
        )
        with self._counted():
            return await self._handler(ctx)

    def route(self, method: str, params: Mapping[str, Any] | None) -> tuple[str, str, str]:
        """(name, server, original name) of the item `method` addresses: which upstream owns it, and its name
        there.

        Raises:
            NotFound: the tool, prompt or resource does not exist.
            InvalidRequest: the params lack the item's name.
        """
        p: Mapping[str, Any] = params or {}
        if method in ("tools/call", "prompts/get"):
            name = p.get("name")
            if not isinstance(name, str):
                raise InvalidRequest(f"{method} needs a string 'name'")
            entry = self.catalog.tool(name) if method == "tools/call" else self.catalog.prompt(name)
            server, original = entry.server, entry.original
        elif method in ("resources/read", "resources/subscribe", "resources/unsubscribe"):
            uri = p.get("uri")
            if not isinstance(uri, str):
                raise InvalidRequest(f"{method} needs a string 'uri'")
            name, server, original = uri, self.catalog.owner_of(uri), uri
        elif method == "completion/complete":
            ref = p.get("ref")
            if not isinstance(ref, Mapping):
                raise InvalidRequest("completion/complete needs a 'ref'")
            if ref.get("type") == "ref/prompt":  # pyright: ignore[reportUnknownMemberType]
                entry = self.catalog.prompt(str(ref.get("name")))  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
                name, server, original = entry.name, entry.server, entry.original
            else:
                uri = str(ref.get("uri", ""))  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
                name, server = uri, self._template_owner(uri)
                original = uri
        else:
            raise InvalidRequest(f"the gateway does not forward {method}")
        return name, server, original

    def context(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        *,
        era: str = "",
        principal: Principal = LOCAL,
        client_info: Mapping[str, Any] | None = None,
        client_capabilities: Mapping[str, Any] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> CallContext:
        """Build the context for one request, resolving which upstream owns the item (`route`).

        Raises:
            NotFound: the tool, prompt or resource does not exist.
            InvalidRequest: the params lack the item's name.
        """
        p: Mapping[str, Any] = params or {}
        name, server, original = self.route(method, p)
        return CallContext(
            method=method,
            name=name,
            params=p,
            server=server,
            original=original,
            era=era,
            principal=principal,
            client_info=client_info,
            client_capabilities=client_capabilities,
            on_progress=on_progress,
            started=time.monotonic(),
        )

    def _template_owner(self, uri_template: str) -> str:
        for server, tpl in self.catalog.templates:
            if tpl.get("uriTemplate") == uri_template:
                return server
        return self.catalog.owner_of(uri_template)

    async def _dispatch(self, ctx: CallContext) -> JsonObject:
        local: Any = ctx.extras.get(_LOCAL)
        if local is not None:
            return await cast(Callable[[], Awaitable[JsonObject]], local)()
        unresolved: Any = ctx.extras.get(_UNRESOLVED)
        if unresolved is not None:
            raise cast(GatewayError, unresolved)
        if self.stopping:
            raise UpstreamUnavailable(ctx.server, "the gateway is shutting down")
        upstream = self.upstreams.get(ctx.server)
        if upstream is None:
            raise UpstreamUnavailable(ctx.server, "not configured")
        params = _forwardable_meta(ctx.params)
        if ctx.method in ("tools/call", "prompts/get"):
            params["name"] = ctx.original
        elif ctx.method == "completion/complete" and ctx.params.get("ref", {}).get("type") == "ref/prompt":
            params["ref"] = {**ctx.params["ref"], "name": ctx.original}
        timeout = self.config.call_timeout(ctx.server)
        if ctx.method in ("resources/subscribe", "resources/unsubscribe") and isinstance(upstream, ClientUpstream):
            await upstream.set_subscription(ctx.original, ctx.method == "resources/subscribe", timeout=timeout)
            return {}
        interactive = ctx.method in _INTERACTIVE
        if interactive and "requestState" in params:
            # A retry: only an envelope this gateway sealed for this caller and item is accepted.
            sealed = self.sealer.open(params["requestState"], principal=str(ctx.principal), item=ctx.name)
            if sealed.server != ctx.server:
                raise InvalidRequest("requestState was issued for another server")
            if sealed.state is None:
                params.pop("requestState")
            else:
                params["requestState"] = sealed.state
        if upstream.state is not UpstreamState.UP:
            raise self._unavailable(ctx.server, upstream)
        on_progress = ctx.on_progress
        screen = PROGRESS_SCREEN.get()
        if screen is not None and on_progress is not None:
            on_progress = screen(on_progress)
        result = await upstream.request(
            ctx.method,
            params,
            timeout=timeout,
            on_progress=on_progress,
            client_capabilities=ctx.client_capabilities,
        )
        if interactive and result.get("resultType") == "input_required":
            state = result.get("requestState")
            sealed_state = self.sealer.seal(server=ctx.server, item=ctx.name, principal=str(ctx.principal), state=state)
            result = {**result, "requestState": sealed_state}
        return result
