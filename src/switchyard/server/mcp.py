"""The front MCP server: the SDK's low-level `Server` whose handlers serve the gateway's catalog.

Owns: the handler for every forwarded method, the single wire boundary where gateway exceptions become
JSON-RPC errors (via `errors.to_error_data`), progress relay to the calling client, and telling connected
clients when lists change (legacy sessions by notification, modern clients through `subscriptions/listen`).
Does not own transports (stdio.py, http.py) or any policy (stages/).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import secrets
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import anyio
import mcp_types as types
from mcp.server import Server
from mcp.server.caching import CacheableMethod, CacheHint
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ToolsListChanged,
)
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel

from switchyard import __version__
from switchyard.errors import InvalidRequest, UpstreamUnavailable, to_error_data
from switchyard.exposure import META_NAMES, WorkingSet
from switchyard.gateway import Gateway
from switchyard.identity import ANONYMOUS, LOCAL, PRINCIPAL_STATE_KEY, REQUEST_PRINCIPAL, Principal
from switchyard.server.mrtr import (
    LegacyClientBridge,
    ModernClientBridge,
    Suspensions,
    drive_for_legacy_client,
    is_input_required,
)
from switchyard.stages.audit import audit_list
from switchyard.stages.flows import LEGACY_SESSION
from switchyard.upstream.base import JsonObject, ProgressCallback
from switchyard.upstream.bridge import INPUT_BRIDGE

__all__ = ["FrontServer"]

logger = logging.getLogger("switchyard.front")

_CACHEABLE: tuple[CacheableMethod, ...] = (
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
)


def _client_info(ctx: ServerRequestContext[Any, Any]) -> Mapping[str, Any] | None:
    meta = ctx.meta or {}
    info = cast(Mapping[str, Any], meta).get(types.CLIENT_INFO_META_KEY)
    if isinstance(info, Mapping):
        return cast(Mapping[str, Any], info)
    params = ctx.session.client_params
    if params is not None:
        return params.client_info.model_dump(by_alias=True, mode="json", exclude_none=True)
    return None


def _client_capabilities(ctx: ServerRequestContext[Any, Any]) -> Mapping[str, Any] | None:
    """What the front client declared it can do: per request on 2026-07-28, at `initialize` on legacy sessions."""
    meta = cast(Mapping[str, Any], ctx.meta or {})
    declared = meta.get(types.CLIENT_CAPABILITIES_META_KEY)
    if isinstance(declared, Mapping):
        return cast(Mapping[str, Any], declared)
    caps = ctx.session.client_capabilities
    return caps.model_dump(by_alias=True, mode="json", exclude_none=True) if caps is not None else None


def _principal(ctx: ServerRequestContext[Any, Any]) -> Principal:
    """Who sent this request: what the HTTP front's auth middleware proved, else the local user (stdio,
    in-process). An HTTP request the middleware did not see is anonymous, never local."""
    request: Any = ctx.request
    if request is None:
        return LOCAL
    state: Any = getattr(request, "scope", {}).get("state")
    found: Any = cast(Mapping[str, Any], state).get(PRINCIPAL_STATE_KEY) if isinstance(state, Mapping) else None
    return found if isinstance(found, Principal) else ANONYMOUS


_UPSTREAM_HOP_KEYS = ("ttlMs", "cacheScope")


def _complete(result: JsonObject) -> JsonObject:
    """The front's answer made from an upstream's result (or the gateway's own).

    - Marked `complete` when it does not say (a legacy server's results never do). The modern wire requires
      `resultType`; on a legacy connection the SDK's per-version sieve drops it again.
    - Stripped of what described the upstream's hop rather than its answer, because the SDK keeps a handler's
      values over its own: the upstream's `serverInfo` stamp in `_meta` (on the modern wire the SDK stamps the
      front's own; the legacy wire carries none) and the upstream's cache hints `ttlMs`/`cacheScope` (the
      front's `cache_hints` apply). Every other `_meta` key is the server's answer and passes unchanged.
    """
    out = {k: v for k, v in result.items() if k not in _UPSTREAM_HOP_KEYS}
    meta: Any = out.get("_meta")
    if isinstance(meta, Mapping) and types.SERVER_INFO_META_KEY in meta:
        kept = {k: v for k, v in cast(Mapping[str, Any], meta).items() if k != types.SERVER_INFO_META_KEY}
        if kept:
            out["_meta"] = kept
        else:
            del out["_meta"]
    out.setdefault("resultType", "complete")
    return out


def _progress_relay(ctx: ServerRequestContext[Any, Any]) -> ProgressCallback:
    """Relay upstream progress to the caller. `report_progress` is a no-op when the caller asked for none;
    asking the upstream regardless keeps in-process clients (which carry no token on the wire) working."""
    session = ctx.session

    async def relay(progress: float, total: float | None, message: str | None) -> None:
        await session.report_progress(progress, total, message)

    return relay


class FrontServer:
    """Builds and feeds the front `Server` for one gateway. One instance serves any number of connections."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.bus = InMemorySubscriptionBus()
        self._legacy: weakref.WeakSet[Any] = weakref.WeakSet()
        self._subscribed: dict[str, weakref.WeakKeyDictionary[Any, weakref.finalize[Any, Any]]] = {}
        """URI -> the legacy connections subscribed to it, each with the finalizer that gives its hold back if
        the connection goes away still subscribed."""
        self._holders: collections.Counter[str] = collections.Counter()
        """How many front subscriptions (legacy connections, modern listen streams) need each upstream one."""
        self._hold_locks: dict[str, anyio.Lock] = {}
        self._listener = ListenHandler(self.bus)
        self._working: weakref.WeakKeyDictionary[Any, WorkingSet] = weakref.WeakKeyDictionary()
        self._sessions: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self._log_levels: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self.parked = Suspensions(ttl=gateway.config.switchyard.mrtr.ttl)
        self.on_legacy_connection: Callable[[Any, Any], None] | None = None
        """Told each handshake-era connection (and the lifespan state) the front sees: the stdio lane's hook."""
        self.server: Server[Any] = Server(
            gateway.config.switchyard.name,
            version=__version__,
            on_subscriptions_listen=self._listen,
            # The catalog can change at any moment (a server restarts, a list_changed arrives) and later
            # per-client visibility makes lists caller-specific: never stale, never shared.
            cache_hints={method: CacheHint(ttl_ms=0, scope="private") for method in _CACHEABLE},
        )
        # Registered by method so handlers may return wire dicts (forwarded unchanged) rather than models.
        handlers: list[tuple[str, type[BaseModel], Any]] = [
            ("tools/list", types.PaginatedRequestParams, self._list_tools),
            ("tools/call", types.CallToolRequestParams, self._call_tool),
            ("prompts/list", types.PaginatedRequestParams, self._list_prompts),
            ("prompts/get", types.GetPromptRequestParams, self._get_prompt),
            ("resources/list", types.PaginatedRequestParams, self._list_resources),
            ("resources/templates/list", types.PaginatedRequestParams, self._list_templates),
            ("resources/read", types.ReadResourceRequestParams, self._read_resource),
            ("resources/subscribe", types.SubscribeRequestParams, self._subscribe),
            ("resources/unsubscribe", types.UnsubscribeRequestParams, self._unsubscribe),
            ("completion/complete", types.CompleteRequestParams, self._complete),
            # Deprecated in 2026-07-28 but part of the handshake era: upstream log messages are relayed to the
            # caller of the call they belong to, at or above the level set here.
            ("logging/setLevel", types.SetLevelRequestParams, self._set_level),
        ]
        for method, params_type, handler in handlers:
            self.server.add_request_handler(method, params_type, handler)
        # Mcp-Param-* header checks on the 2026-07-28 HTTP path read a tool's schema from here; without it the
        # SDK would run a whole tools/list (and audit it) for every call with arguments.
        self.server.get_tool_input_schema = self._input_schema
        self.server.middleware.append(self._track_connection)
        gateway.add_listener(self._on_catalog_change)
        gateway.add_resource_listener(self._on_resource_updated)

    def _input_schema(self, name: str) -> Mapping[str, Any] | None:
        """A tool's input schema by federated name, for the SDK's `Mcp-Param-*` header check (None for unknown
        or quarantined tools, and for tools the request's principal may not see: a header check that knew a
        hidden tool's schema would tell it apart from a nonexistent one)."""
        entry = self.gateway.catalog.tools.get(name)
        principal = REQUEST_PRINCIPAL.get()
        if (
            entry is not None
            and principal is not None
            and not self.gateway.policy.allows(principal, "tools", entry.server, name)
        ):
            return None
        schema: Any = entry.definition.get("inputSchema") if entry is not None else None
        return cast(Mapping[str, Any], schema) if isinstance(schema, Mapping) else None

    def initialization_options(self) -> InitializationOptions:
        """Legacy-era capabilities: every list may change."""
        return self.server.create_initialization_options(
            NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)
        )

    # --- connection tracking and change fan-out ------------------------------------------------------------------

    async def _track_connection(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            connection = getattr(ctx.session, "_connection", None)
            if connection is not None:
                self._legacy.add(connection)
                if self.on_legacy_connection is not None:
                    self.on_legacy_connection(connection, ctx.lifespan_context)
        return await call_next(ctx)

    async def _on_catalog_change(self, changed: frozenset[str]) -> None:
        for kind, event, send in (
            ("tools", ToolsListChanged(), "send_tool_list_changed"),
            ("prompts", PromptsListChanged(), "send_prompt_list_changed"),
            ("resources", ResourcesListChanged(), "send_resource_list_changed"),
        ):
            if kind not in changed:
                continue
            await self.bus.publish(event)
            for connection in list(self._legacy):
                await getattr(connection, send)()

    async def _on_resource_updated(self, uri: str) -> None:
        await self.bus.publish(ResourceUpdated(uri=uri))
        for connection in list(self._subscribed.get(uri, ())):
            await connection.send_resource_updated(uri)

    # --- the wire boundary ---------------------------------------------------------------------------------------

    async def _run(
        self, ctx: ServerRequestContext[Any, Any], method: str, params: Mapping[str, Any] | None
    ) -> JsonObject:
        """One request through the gateway, bridging input-required both ways between the eras."""
        gw = self.gateway
        modern_front = ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
        caps = _client_capabilities(ctx)
        principal = _principal(ctx)

        async def once(p: Mapping[str, Any] | None) -> JsonObject:
            return await gw.request(
                method,
                p,
                era=ctx.protocol_version,
                principal=principal,
                client_info=_client_info(ctx),
                client_capabilities=caps,
                on_progress=_progress_relay(ctx),
            )

        if not modern_front:
            connection = getattr(ctx.session, "_connection", None)
            level = self._log_levels.get(connection) if connection is not None else None
            if level is not None:
                # A legacy client's logging/setLevel becomes the per-request opt-in a modern upstream needs.
                base = dict(params or {})
                meta = dict(cast(Mapping[str, Any], base.get("_meta") or {}))
                meta.setdefault(types.LOG_LEVEL_META_KEY, level)
                params = {**base, "_meta": meta}
            token = INPUT_BRIDGE.set(LegacyClientBridge(ctx, level))
            session_token = LEGACY_SESSION.set(self._session_id(ctx))  # the flow policy's conversation
            try:
                result = await once(params)
                if is_input_required(result):
                    result = await drive_for_legacy_client(
                        ctx, dict(params or {}), result, once, max_rounds=gw.config.switchyard.mrtr.max_rounds
                    )
            finally:
                LEGACY_SESSION.reset(session_token)
                INPUT_BRIDGE.reset(token)
            return result
        parked = self._parked_target(method, params)
        if parked is None:
            token = INPUT_BRIDGE.set(ModernClientBridge(ctx))
            try:
                return await once(params)
            finally:
                INPUT_BRIDGE.reset(token)
        server, item = parked

        def seal(ident: str) -> str:
            return gw.sealer.seal(server=server, item=item, principal=str(principal), state={"parked": ident})

        state = (params or {}).get("requestState")
        if state is not None:
            opened: Any = gw.sealer.open(state, principal=str(principal), item=item).state
            if isinstance(opened, Mapping) and "parked" in opened:
                responses = cast(Mapping[str, Any], (params or {}).get("inputResponses") or {})
                return await self.parked.resume(str(cast(Mapping[str, Any], opened)["parked"]), responses, seal)
        # The call timeout bounds the parked call, the time its client takes to answer included.
        return await self.parked.start(gw.spawn, lambda: once(params), caps, seal)

    def _session_id(self, ctx: ServerRequestContext[Any, Any]) -> str | None:
        """A random id for the legacy session (connection) of `ctx`, the same for all its requests."""
        connection = getattr(ctx.session, "_connection", None)
        if connection is None:
            return None
        found = self._sessions.get(connection)
        if found is None:
            found = self._sessions[connection] = secrets.token_hex(8)
        return found

    def _parked_target(self, method: str, params: Mapping[str, Any] | None) -> tuple[str, str] | None:
        """(server, item) when a modern client's request goes to a legacy upstream that may push questions."""
        if method not in ("tools/call", "prompts/get", "resources/read"):
            return None
        try:
            name, server, _ = self.gateway.route(method, params)
        except Exception:
            return None  # the normal path reports the problem
        era = self.gateway.era_of(server)
        if era is None or era in MODERN_PROTOCOL_VERSIONS:
            return None
        return server, name

    async def _forward(
        self, ctx: ServerRequestContext[Any, Any], method: str, params: Mapping[str, Any] | None = None
    ) -> JsonObject:
        """Forward one request (with `params`, default the request's own) and map gateway errors."""
        await self._settled_for(method, ctx.params if params is None else params)
        try:
            return _complete(await self._run(ctx, method, ctx.params if params is None else params))
        except MCPError:
            raise
        except Exception as exc:
            raise MCPError.from_error_data(to_error_data(exc)) from None

    # --- handlers ------------------------------------------------------------------------------------------------

    async def _list_tools(self, ctx: ServerRequestContext[Any, Any], params: Any) -> JsonObject:
        await self.gateway.settled()
        gw = self.gateway
        tools = gw.exposure.list_tools(gw.catalog, gw.public("tools"), self._working_set(ctx))
        return self._listed(ctx, "tools/list", "tools", gw.policy.visible_tools(_principal(ctx), tools, gw.catalog))

    async def _list_prompts(self, ctx: ServerRequestContext[Any, Any], params: Any) -> JsonObject:
        await self.gateway.settled()
        gw = self.gateway
        prompts = gw.policy.visible_prompts(_principal(ctx), gw.public("prompts"), gw.catalog)
        return self._listed(ctx, "prompts/list", "prompts", prompts)

    async def _list_resources(self, ctx: ServerRequestContext[Any, Any], params: Any) -> JsonObject:
        await self.gateway.settled()
        resources = self.gateway.policy.visible_resources(_principal(ctx), self.gateway.catalog.resources)
        return self._listed(ctx, "resources/list", "resources", resources)

    async def _list_templates(self, ctx: ServerRequestContext[Any, Any], params: Any) -> JsonObject:
        await self.gateway.settled()
        policy, templates = self.gateway.policy, self.gateway.catalog.templates
        visible = policy.visible_resources(_principal(ctx), templates, "uriTemplate")
        return self._listed(ctx, "resources/templates/list", "resourceTemplates", visible)

    def _listed(
        self, ctx: ServerRequestContext[Any, Any], method: str, key: str, items: list[JsonObject]
    ) -> JsonObject:
        """A list answer, recorded in the audit log (lists are answered here, outside the stage chain)."""
        sink, era, info = self.gateway.audit_store, ctx.protocol_version, _client_info(ctx)
        audit_list(sink, method, _principal(ctx), era=era, client_info=info, count=len(items))
        return _complete({key: items})

    def _working_set(self, ctx: ServerRequestContext[Any, Any]) -> WorkingSet | None:
        """The session's working set in `dynamic` mode on a legacy session; None otherwise."""
        if self.gateway.exposure.mode != "dynamic" or ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return None
        connection = getattr(ctx.session, "_connection", None)
        if connection is None:
            return None
        working = self._working.get(connection)
        if working is None:
            working = self._working[connection] = WorkingSet(self.gateway.exposure.working_limit)
        return working

    async def _meta_tool(self, ctx: ServerRequestContext[Any, Any], name: str) -> tuple[JsonObject | None, JsonObject]:
        """Answer `search_tools` directly; turn `call_tool` into the params of the real call."""
        raw: Mapping[str, Any] = ctx.params or {}
        arguments: Any = raw.get("arguments") or {}
        if not isinstance(arguments, Mapping):
            raise InvalidRequest(f"{name}: 'arguments' must be an object")
        args = cast(Mapping[str, Any], arguments)
        gw = self.gateway
        if name == "search_tools":
            principal = _principal(ctx)
            found: list[str] = []

            async def answer() -> JsonObject:
                visible = gw.policy.visible_catalog(principal, gw.catalog)
                result, names = await gw.exposure.search(visible, args)
                found.extend(names)
                return result

            # Through the stage chain: audited, rate limited and guarded (the results quote upstream texts).
            result = await gw.answer_locally(
                name, raw, answer, era=ctx.protocol_version, principal=principal, client_info=_client_info(ctx)
            )
            working = self._working_set(ctx)
            if working is not None and working.add([n for n in found if gw.exposure.listable(n)]):
                await ctx.session.send_tool_list_changed()
            return result, {}
        inner = args.get("name")
        inner_args = args.get("arguments", {})
        if not isinstance(inner, str) or not isinstance(inner_args, Mapping):
            raise InvalidRequest("call_tool needs 'name' (string) and 'arguments' (object)")
        params: JsonObject = {"name": inner, "arguments": inner_args}
        for key in ("_meta", "requestState", "inputResponses"):  # a retry after input_required is the inner call's
            if key in raw:
                params[key] = raw[key]
        working = self._working_set(ctx)
        if working is not None:
            working.touch(inner)
        return None, params

    async def _settled_for(self, method: str, params: Mapping[str, Any] | None) -> None:
        """Right after start-up, wait for servers still starting only when the item is not known yet: a call to
        a server that is up never waits for the slowest one."""
        gw = self.gateway
        if gw.started.is_set():
            return
        name = (params or {}).get("name")
        if method == "tools/call" and name in META_NAMES and gw.exposure.mode != "all":
            await gw.settled()  # a search must see every server that comes up in time
            return
        try:
            gw.route(method, params)
        except Exception:
            await gw.settled()

    async def _call_tool(self, ctx: ServerRequestContext[Any, Any], params: Any) -> Any:
        await self._settled_for("tools/call", ctx.params)
        try:
            call_params: Mapping[str, Any] | None = ctx.params
            name = (ctx.params or {}).get("name")
            if name in META_NAMES and self.gateway.exposure.mode != "all":
                # The gateway's own names in these modes: an upstream tool of the same name (prefixing off, or a
                # separator that spells it) is reached through `call_tool`, never shadows the meta-tool.
                answered, call_params = await self._meta_tool(ctx, str(name))
                if answered is not None:
                    return _complete(answered)
            elif isinstance(name, str) and (working := self._working_set(ctx)) is not None:
                working.touch(name)  # a found tool called by its listed name is used too
            return _complete(await self._run(ctx, "tools/call", call_params))
        except UpstreamUnavailable as exc:
            # A tool call that could not reach its server is a tool failure the model can read and act on.
            return _complete({"content": [{"type": "text", "text": str(exc)}], "isError": True})
        except MCPError:
            raise
        except Exception as exc:
            raise MCPError.from_error_data(to_error_data(exc)) from None

    async def _get_prompt(self, ctx: ServerRequestContext[Any, Any], params: Any) -> Any:
        return await self._forward(ctx, "prompts/get")

    async def _read_resource(self, ctx: ServerRequestContext[Any, Any], params: Any) -> Any:
        return await self._forward(ctx, "resources/read")

    async def _complete(self, ctx: ServerRequestContext[Any, Any], params: Any) -> Any:
        return await self._forward(ctx, "completion/complete")

    # --- resource subscriptions: one upstream subscription per URI, shared by every front subscriber ------------

    async def _hold(self, ctx: ServerRequestContext[Any, Any], uri: str) -> None:
        """One more front subscriber needs updates of `uri`.

        Every subscriber's request goes through the stage chain (policy, audit), not only the first one's: a
        URI hidden from this principal is refused to it whoever else watches it. Upstream a repeated subscribe
        is a no-op. Holds and releases of one URI take turns, so a subscribe never races the last unsubscribe.
        """
        async with self._hold_lock(uri):
            await self._forward(ctx, "resources/subscribe", {"uri": uri})
            self._holders[uri] += 1

    async def _release(self, ctx: ServerRequestContext[Any, Any], uri: str) -> None:
        """One front subscriber less; the last one unsubscribes upstream."""
        await self._drop_hold(uri, lambda: self._forward(ctx, "resources/unsubscribe", {"uri": uri}))

    async def _drop_hold(self, uri: str, unsubscribe: Callable[[], Awaitable[Any]]) -> None:
        async with self._hold_lock(uri):
            if self._holders[uri] <= 0:
                return
            self._holders[uri] -= 1
            if self._holders[uri] == 0:
                del self._holders[uri]
                await unsubscribe()

    def _connection_gone(self, loop: asyncio.AbstractEventLoop, uri: str, principal: Principal) -> None:
        """A finalizer (any thread, any time): hand the release to the event loop, if it still runs."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: the gateway is gone too
            loop.call_soon_threadsafe(self._spawn_release, uri, principal)

    def _spawn_release(self, uri: str, principal: Principal) -> None:
        async def release() -> None:
            try:
                await self._drop_hold(
                    uri, lambda: self.gateway.request("resources/unsubscribe", {"uri": uri}, principal=principal)
                )
            except Exception as exc:  # the server is down, or the URI gone: nothing left to keep
                logger.info("releasing %s for a closed connection failed: %s", uri, exc)

        with contextlib.suppress(RuntimeError):  # the gateway stopped meanwhile
            self.gateway.spawn(release)

    def _hold_lock(self, uri: str) -> anyio.Lock:
        lock = self._hold_locks.get(uri)
        if lock is None:
            lock = self._hold_locks[uri] = anyio.Lock()
        return lock

    async def _set_level(self, ctx: ServerRequestContext[Any, Any], params: types.SetLevelRequestParams) -> Any:
        connection = getattr(ctx.session, "_connection", None)
        if connection is not None:
            self._log_levels[connection] = params.level
        return {}

    async def _subscribe(self, ctx: ServerRequestContext[Any, Any], params: types.SubscribeRequestParams) -> Any:
        connection = getattr(ctx.session, "_connection", None)
        subscribers = self._subscribed.setdefault(params.uri, weakref.WeakKeyDictionary())
        if connection is None or connection not in subscribers:
            await self._hold(ctx, params.uri)
            if connection is not None:
                # A connection that goes away still subscribed (a legacy HTTP session that expired, a client
                # that never unsubscribed) gives its hold back when it is collected.
                loop = asyncio.get_running_loop()
                subscribers[connection] = weakref.finalize(
                    connection, self._connection_gone, loop, params.uri, _principal(ctx)
                )
        # Legacy-only method: its EmptyResult carries no `resultType` (strict 2025 clients reject the key).
        return {}

    async def _unsubscribe(self, ctx: ServerRequestContext[Any, Any], params: types.UnsubscribeRequestParams) -> Any:
        connection = getattr(ctx.session, "_connection", None)
        subscribers = self._subscribed.get(params.uri)
        if subscribers is not None and connection is not None and connection in subscribers:
            subscribers.pop(connection).detach()  # released here, not again when the connection is collected
            await self._release(ctx, params.uri)
        return {}

    async def _listen(self, ctx: ServerRequestContext[Any, Any], params: types.SubscriptionsListenRequestParams) -> Any:
        """`subscriptions/listen`: the SDK's handler over the front's bus, once every resource the stream names
        is subscribed upstream (upstreams send updates only for subscribed URIs; the bus only carries what
        they send). A URI no server offers is left out, as a server leaves out what it cannot honour. The
        upstream subscriptions are released when the stream ends."""
        held: list[str] = []
        try:
            for uri in params.notifications.resource_subscriptions or ():
                try:
                    await self._hold(ctx, uri)
                except MCPError as exc:
                    logger.info("listen: no upstream subscription for %s: %s", uri, exc.message)
                else:
                    held.append(uri)
            asked = params.notifications.resource_subscriptions or []
            if held != asked:  # what could not be held (hidden, or offered by no server) is not watched
                kept = params.notifications.model_copy(update={"resource_subscriptions": held or None})
                params = params.model_copy(update={"notifications": kept})
            return await self._listener(ctx, params)
        finally:
            # The stream usually ends by cancellation (the client went away): release in a shielded, bounded scope.
            with anyio.CancelScope(shield=True), anyio.move_on_after(self.gateway.config.switchyard.timeouts.call):
                for uri in held:
                    try:
                        await self._release(ctx, uri)
                    except MCPError as exc:
                        logger.info("listen: releasing %s upstream failed: %s", uri, exc.message)
