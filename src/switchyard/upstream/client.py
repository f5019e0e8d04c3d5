"""`ClientUpstream`: one persistent SDK client session to one MCP server, kept alive with backoff.

Owns: connecting (era detected once with `mode="auto"`, then cached), listing what the server offers,
following its change notifications (legacy notifications or a modern `subscriptions/listen` stream),
forwarding raw requests on the shared session, and reconnecting with exponential backoff when the connection
drops. Does not own: the transport details (subclasses in `stdio.py`, `http.py`, `memory.py`), naming, or
policy.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from contextlib import AsyncExitStack, suppress
from dataclasses import replace
from typing import Any, cast

import anyio
import mcp_types as types
from mcp import Client
from mcp.client.subscriptions import SubscriptionLost
from mcp.shared.dispatcher import as_request_id
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import TypeAdapter

from switchyard.config import RestartSettings, mask_secrets
from switchyard.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from switchyard.upstream.base import (
    ChangeListener,
    JsonObject,
    ProgressCallback,
    ResourceListener,
    UpstreamSnapshot,
    UpstreamState,
    unavailable,
)
from switchyard.upstream.bridge import InFlight
from switchyard.upstream.capabilities import FRONT_CAPABILITIES, install_capability_override
from switchyard.upstream.lane import ForwardLane, LaneDeclined, tracing_active
from switchyard.upstream.watch import ClosedWatch

__all__ = ["ClientUpstream", "RawRequest"]

logger = logging.getLogger("switchyard.upstream")

_DICT_RESULT: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])
_LIST_KINDS = ("tools", "prompts", "resources")
_STABLE_SECONDS = 10.0
"""A connection that lasted this long resets the restart backoff; one that crashes sooner keeps backing off."""
_RELISTEN_INITIAL = 0.5
"""Seconds before a modern server's ended change stream is opened again (doubling while it keeps ending)."""
_RELISTEN_MAXIMUM = 30.0
_NO_LISTEN = frozenset({types.METHOD_NOT_FOUND, types.INVALID_REQUEST, types.INVALID_PARAMS})
"""Refusals of `subscriptions/listen` that asking again will not change."""


class RawParams(types.RequestParams):
    """Request params passed through unchanged (unknown keys kept)."""

    model_config = types.RequestParams.model_config | {"extra": "allow"}


class RawRequest(types.Request[RawParams, str]):
    """Any request, by method name, with its params kept as they arrived."""

    method: str
    params: RawParams | None = None  # pyright: ignore[reportIncompatibleVariableOverride] - any method, any params


def _dump(model: Any) -> JsonObject:
    return cast(JsonObject, model.model_dump(by_alias=True, mode="json", exclude_none=True))


class ClientUpstream:
    """Base class for upstreams reached through `mcp.Client`; subclasses say how to reach the server."""

    def __init__(
        self,
        name: str,
        *,
        connect_timeout: float = 30.0,
        restart: RestartSettings | None = None,
        listener: ChangeListener | None = None,
        resource_listener: ResourceListener | None = None,
        client_info: types.Implementation | None = None,
    ) -> None:
        self._name = name
        self._connect_timeout = connect_timeout
        self._restart = restart or RestartSettings()
        self._listener = listener
        self._resource_listener = resource_listener
        self._subscriptions: set[str] = set()
        self._relisten = anyio.Event()
        self._client_info = client_info or types.Implementation(name="switchyard", version="0.1.0")
        self._state = UpstreamState.STARTING
        self._snapshot: UpstreamSnapshot | None = None
        self._last_error: str | None = None
        self._client: Client | None = None
        self._era: str | None = None
        self._discover: types.DiscoverResult | None = None
        self._first_attempt = anyio.Event()
        self.inflight = InFlight()
        self._refresh_send, self._refresh_recv = anyio.create_memory_object_stream[str](16)
        self.attempts = 0
        self.lane: ForwardLane | None = None
        """The transport's fast path for forwarded requests, when it has one (`lane.py`, `http_lane.py`)."""

    # --- Upstream protocol -------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The server's configured name."""
        return self._name

    @property
    def state(self) -> UpstreamState:
        """Current state."""
        return self._state

    @property
    def snapshot(self) -> UpstreamSnapshot | None:
        """The last listing, or None if the server never came up."""
        return self._snapshot

    @property
    def last_error(self) -> str | None:
        """Why the server is down, or None."""
        return self._last_error

    async def wait_ready(self, timeout: float) -> bool:
        """Wait for the first connection attempt to finish; True if the server is up."""
        with anyio.move_on_after(timeout):
            await self._first_attempt.wait()
        return self._state is UpstreamState.UP

    async def request(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        *,
        timeout: float,
        on_progress: ProgressCallback | None = None,
        client_capabilities: Mapping[str, Any] | None = None,
    ) -> JsonObject:
        """Forward one request on the shared session; see `Upstream.request`."""
        client = self._client
        lane = self.lane
        # Not up, or the connection just ended and `run` has not marked the server down yet: nothing is sent.
        if client is None or self._state is not UpstreamState.UP or (lane is not None and not lane.open):
            state = UpstreamState.DOWN if self._state is UpstreamState.UP else self._state
            raise unavailable(
                self._name, state, self._last_error or "its connection closed", reconnects=self._reconnects
            )
        token = FRONT_CAPABILITIES.set(client_capabilities if client_capabilities is not None else {})
        call = self.inflight.enter()
        try:
            if lane is not None and lane.open and not tracing_active():
                session = client.session
                with suppress(LaneDeclined):
                    return await lane.request(
                        method,
                        params,
                        stamp=session._stamp,  # pyright: ignore[reportPrivateUsage] - the session's envelope
                        version=session.protocol_version or "2025-11-25",  # the session's own fallback
                        timeout=timeout,
                        on_progress=on_progress,
                    )
            request = RawRequest(method=method, params=RawParams.model_validate(params) if params is not None else None)
            result: JsonObject = await client.session.send_request(
                request,
                cast(Any, _DICT_RESULT),  # the SDK's bound is BaseModel; a plain-dict adapter works the same
                request_read_timeout_seconds=timeout,
                progress_callback=cast(Any, on_progress),  # same call signature as the SDK's ProgressFnT
            )
            return result
        except MCPError as exc:
            raise self._translate(exc, timeout) from None
        finally:
            self.inflight.leave(call)
            FRONT_CAPABILITIES.reset(token)

    # --- lifecycle ----------------------------------------------------------------------------------------------

    def _target(self, stack: AsyncExitStack) -> Any:
        """What `mcp.Client` connects to: a transport, a URL, or an in-process server. Subclasses implement."""
        raise NotImplementedError

    def _connected(self, client: Client, watch: ClosedWatch, stack: AsyncExitStack) -> None:
        """The session is up (era known, before the listings): a transport may attach its lane for this
        connection, closing it on `stack` and ending the connection with `watch.close(reason)`."""

    _reconnects = False
    """Whether the gateway reconnects to this server when it goes down (HTTP) rather than restarting it (stdio)."""

    def _secret_values(self) -> Mapping[str, str]:
        """The configured values that must never appear in an error or log line (`env`, `headers`)."""
        return {}

    def _describe_failure(self, exc: BaseException) -> str:
        """One line saying why a connection failed; subclasses may add context (stderr tail). Secret values
        are masked by the caller (`mask_secrets`)."""
        leaf = _first_leaf(exc)
        text = str(leaf) or type(leaf).__name__
        return text.splitlines()[0][:300]

    async def run(self) -> None:
        """Connect, serve, and reconnect with exponential backoff until cancelled."""
        delay = self._restart.initial
        try:
            while True:
                self.attempts += 1
                connected = False
                began = anyio.current_time()
                try:
                    connected = await self._connect_and_serve()
                except Exception as exc:
                    self._last_error = mask_secrets(self._describe_failure(exc), self._secret_values())
                    logger.warning("server %s: %s", self._name, self._last_error)
                    logger.debug("server %s: connection failure", self._name, exc_info=exc)
                finally:
                    self._client = None
                    self._first_attempt.set()
                if self._state is not UpstreamState.DOWN:
                    self._state = UpstreamState.DOWN
                    await self._notify(frozenset({"state"}))
                if connected and anyio.current_time() - began >= _STABLE_SECONDS:
                    delay = self._restart.initial  # it served a while: a new fault, not the same one again
                logger.info("server %s: down; retrying in %.1f s", self._name, delay)
                await anyio.sleep(delay)
                delay = min(delay * 2, self._restart.maximum)
        finally:
            self._state = UpstreamState.STOPPED
            self._client = None
            self._refresh_send.close()
            self._refresh_recv.close()

    def _make_client(self, target: Any) -> Client:
        mode: str = "auto"
        prior: types.DiscoverResult | None = None
        if self._era is not None:
            mode = self._era if self._era in MODERN_PROTOCOL_VERSIONS else "legacy"
            prior = self._discover if mode != "legacy" else None
        return Client(
            target,
            mode=cast(Any, mode),
            prior_discover=prior,
            client_info=self._client_info,
            message_handler=self._on_message,
            cache=None,
            # Declared so a legacy server may push these mid-call; they are routed to the calling client
            # (bridge.py). Modern requests carry each caller's own capabilities instead (capabilities.py).
            elicitation_callback=self.inflight.elicit,
            sampling_callback=self.inflight.sample,
            list_roots_callback=self.inflight.roots,
            logging_callback=self.inflight.log,
        )

    async def _connect_and_serve(self) -> bool:
        """One connection's life. Returns True if it got as far as serving.

        The connect deadline is a cancel scope around the whole connection (the client's task groups must
        nest inside it); it is lifted once the server has answered its listings.
        """
        with anyio.CancelScope(deadline=anyio.current_time() + self._connect_timeout) as scope:
            async with AsyncExitStack() as stack:
                watch = ClosedWatch()
                client = self._make_client(watch.wrap(self._target(stack)))
                try:
                    await stack.enter_async_context(client)
                except BaseException:
                    self._era = None  # a cached era that no longer answers: probe from scratch next time
                    raise
                self._era = client.protocol_version
                self._discover = client.session.discover_result
                install_capability_override(client.session)
                self._client = client
                self._connected(client, watch, stack)
                self._snapshot = await self._list_all(client)
                await self._restore_subscriptions(client)
                scope.deadline = math.inf
                await self._serve(client, watch)
                return True
        if scope.cancelled_caught:
            raise TimeoutError(f"no answer within {self._connect_timeout:g} s of starting")
        return False

    async def _serve(self, client: Client, watch: ClosedWatch) -> None:
        self._state = UpstreamState.UP
        self._last_error = None
        self._first_attempt.set()
        tools = len(self._snapshot.tools) if self._snapshot else 0
        logger.info("server %s: up (%s, %d tools)", self._name, self._era, tools)
        await self._notify(frozenset({"state", *_LIST_KINDS}))
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._refresher, client)
            if self._era in MODERN_PROTOCOL_VERSIONS:
                tg.start_soon(self._listen, client)
            await watch.closed.wait()
            self._last_error = mask_secrets(watch.reason or "connection closed", self._secret_values())
            tg.cancel_scope.cancel()
        self._client = None

    async def _notify(self, what: frozenset[str]) -> None:
        if self._listener is None:
            return
        try:
            await self._listener(self, what)
        except Exception:
            logger.exception("change listener failed for server %s", self._name)

    # --- listing ------------------------------------------------------------------------------------------------

    async def _list_all(self, client: Client) -> UpstreamSnapshot:
        caps = client.server_capabilities
        tools = await self._list(client, "tools") if caps.tools is not None else ()
        prompts = await self._list(client, "prompts") if caps.prompts is not None else ()
        resources: tuple[JsonObject, ...] = ()
        templates: tuple[JsonObject, ...] = ()
        if caps.resources is not None:
            resources = await self._list(client, "resources")
            templates = await self._list(client, "templates")
        info = client.server_info
        return UpstreamSnapshot(
            era=client.protocol_version,
            server_info=_dump(info) if info is not None else None,
            capabilities=_dump(caps),
            instructions=client.instructions,
            tools=tools,
            prompts=prompts,
            resources=resources,
            templates=templates,
        )

    async def _list(self, client: Client, kind: str) -> tuple[JsonObject, ...]:
        """Every page of one list. Tools go through the session so it learns `x-mcp-header` mappings."""
        session = client.session
        items: list[JsonObject] = []
        cursor: str | None = None
        for _ in range(1000):  # a bound on pages, against a server that loops its cursor
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            if kind == "tools":
                page = await session.list_tools(params=params)
                items.extend(_dump(t) for t in page.tools)
            elif kind == "prompts":
                page = await session.list_prompts(params=params)
                items.extend(_dump(p) for p in page.prompts)
            elif kind == "resources":
                page = await session.list_resources(params=params)
                items.extend(_dump(r) for r in page.resources)
            else:
                page = await session.list_resource_templates(params=params)
                items.extend(_dump(t) for t in page.resource_templates)
            cursor = page.next_cursor
            if not cursor:
                break
        return tuple(items)

    async def _refresher(self, client: Client) -> None:
        """Re-list one kind whenever the server says it changed; coalesces bursts."""
        async for kind in self._refresh_recv:
            pending = {kind}
            while True:
                try:
                    pending.add(self._refresh_recv.receive_nowait())
                except anyio.WouldBlock:
                    break
            snap = self._snapshot
            if snap is None:
                continue
            try:
                changes: dict[str, Any] = {}
                for k in sorted(pending):
                    if k == "resources":
                        changes["resources"] = await self._list(client, "resources")
                        changes["templates"] = await self._list(client, "templates")
                    else:
                        changes[k] = await self._list(client, k)
            except MCPError as exc:
                logger.warning("server %s: re-listing %s failed: %s", self._name, ", ".join(pending), exc)
                continue
            self._snapshot = _replace(snap, changes)
            await self._notify(frozenset(pending))

    async def set_subscription(self, uri: str, on: bool, *, timeout: float) -> None:
        """Subscribe to (or drop) updates of one resource, in the server's own era.

        The set is kept in both eras, so a new connection restores it (a legacy server is sent
        `resources/subscribe` again; a modern one gets it in its listen request).
        """
        if self._era in MODERN_PROTOCOL_VERSIONS:
            changed = (uri not in self._subscriptions) if on else (uri in self._subscriptions)
            (self._subscriptions.add if on else self._subscriptions.discard)(uri)
            if changed:
                self._relisten.set()
            return
        if not on:
            self._subscriptions.discard(uri)
        await self.request("resources/subscribe" if on else "resources/unsubscribe", {"uri": uri}, timeout=timeout)
        if on:
            self._subscriptions.add(uri)

    async def _restore_subscriptions(self, client: Client) -> None:
        """A new connection: subscribe again (legacy) and report each watched resource updated, since a change
        made while the server was away was never announced."""
        if not self._subscriptions:
            return
        uris = sorted(self._subscriptions)
        if self._era not in MODERN_PROTOCOL_VERSIONS:
            for uri in uris:
                try:
                    await client.session.subscribe_resource(uri)  # pyright: ignore[reportDeprecated] - legacy era
                except MCPError as exc:
                    logger.warning("server %s: re-subscribing to %s failed: %s", self._name, uri, exc)
        await self._resources_updated(uris)

    async def _resources_updated(self, uris: list[str]) -> None:
        if self._resource_listener is None:
            return
        for uri in uris:
            try:
                await self._resource_listener(uri)
            except Exception:
                logger.exception("resource listener failed for %s of server %s", uri, self._name)

    async def _listen(self, client: Client) -> None:
        """Follow a modern server's change stream for this connection's life.

        The stream is re-opened at once when the set of watched resources changes, and after a backoff when
        it ends: a graceful close by the server, or a drop (a proxy's idle timeout, a redeploy). A re-opened
        stream may have missed changes, so every kind it follows is re-listed and every watched resource
        reported updated. Only a server that does not know `subscriptions/listen` ends this for good.
        """
        caps = client.server_capabilities
        wanted = {
            "tools_list_changed": bool(caps.tools and caps.tools.list_changed),
            "prompts_list_changed": bool(caps.prompts and caps.prompts.list_changed),
            "resources_list_changed": bool(caps.resources and caps.resources.list_changed),
        }
        delay = _RELISTEN_INITIAL
        missed = False
        while True:
            self._relisten = anyio.Event()
            subs = tuple(sorted(self._subscriptions))
            if not any(wanted.values()) and not subs:
                await self._relisten.wait()
                continue
            opened = anyio.current_time()
            ended: str | None = None
            async with anyio.create_task_group() as tg:

                async def stop_on_relisten(scope: anyio.CancelScope = tg.cancel_scope) -> None:
                    await self._relisten.wait()
                    scope.cancel()

                tg.start_soon(stop_on_relisten)
                try:
                    async with client.listen(**wanted, resource_subscriptions=subs) as sub:
                        if missed:
                            self._catch_up(wanted)
                            await self._resources_updated(list(subs))
                            missed = False
                        async for event in sub:
                            await self._on_event(event)
                    ended = "closed by the server"
                except MCPError as exc:
                    if exc.code in _NO_LISTEN:
                        logger.info("server %s: no change stream (%s)", self._name, exc)
                        tg.cancel_scope.cancel()
                        return
                    ended = str(exc)
                except (SubscriptionLost, TimeoutError) as exc:
                    ended = str(exc) or type(exc).__name__
                tg.cancel_scope.cancel()
            if ended is None:
                continue  # the watched resources changed: listen again at once
            missed = True
            if anyio.current_time() - opened >= _STABLE_SECONDS:
                delay = _RELISTEN_INITIAL  # it held a while: a new end, not the same one again
            logger.info("server %s: change stream ended (%s); listening again in %.1f s", self._name, ended, delay)
            await anyio.sleep(delay)
            delay = min(delay * 2, _RELISTEN_MAXIMUM)

    def _catch_up(self, wanted: Mapping[str, bool]) -> None:
        """Re-list every kind a change stream follows (after a gap in which its events were lost)."""
        for kind in _LIST_KINDS:
            if wanted.get(f"{kind}_list_changed"):
                self._queue_refresh(kind)

    async def _on_event(self, event: Any) -> None:
        kind = type(event).__name__
        if kind == "ResourceUpdated":
            if self._resource_listener is not None:
                await self._resource_listener(str(event.uri))
        elif kind.startswith("Tools"):
            self._queue_refresh("tools")
        elif kind.startswith("Prompts"):
            self._queue_refresh("prompts")
        elif kind.startswith("Resources"):
            self._queue_refresh("resources")

    def _queue_refresh(self, kind: str) -> None:
        with suppress(anyio.WouldBlock):  # a refresh is already pending; it re-lists everything asked for
            self._refresh_send.send_nowait(kind)

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, Exception):
            logger.warning("server %s: unreadable message: %s", self._name, str(message).splitlines()[0][:200])
            return
        if self._streamed(message):
            return  # an event our change stream took: the SDK tees it here too, and `_on_event` has it
        if isinstance(message, types.ToolListChangedNotification):
            self._queue_refresh("tools")
        elif isinstance(message, types.PromptListChangedNotification):
            self._queue_refresh("prompts")
        elif isinstance(message, types.ResourceListChangedNotification):
            self._queue_refresh("resources")
        elif isinstance(message, types.ResourceUpdatedNotification) and self._resource_listener is not None:
            await self._resource_listener(str(message.params.uri))

    def _streamed(self, message: Any) -> bool:
        """Whether `message` is an event the SDK delivered to an open change stream (its subscription id names a
        live listen). An event for a stream already closed (frames in flight while the gateway re-listens) was
        delivered nowhere else: it is handled here."""
        params: Any = getattr(message, "params", None)
        meta: Any = getattr(params, "meta", None)
        if not isinstance(meta, Mapping) or SUBSCRIPTION_ID_META_KEY not in meta:
            return False
        client = self._client
        routes: Any = getattr(client.session, "_listen_routes", None) if client is not None else None
        ident = as_request_id(cast(Mapping[str, Any], meta).get(SUBSCRIPTION_ID_META_KEY))
        return isinstance(routes, Mapping) and ident is not None and ident in routes

    def _translate(self, exc: MCPError, timeout: float) -> Exception:
        if exc.code == REQUEST_TIMEOUT and "timed out" in exc.message and math.isfinite(timeout):
            return UpstreamTimeout(self._name, timeout)
        if exc.code == CONNECTION_CLOSED and exc.message == "Connection closed":
            return UpstreamUnavailable(self._name, "the connection closed during the call (did the server crash?)")
        return UpstreamError(self._name, exc.code, exc.message, exc.data)


def _first_leaf(exc: BaseException) -> BaseException:
    """The first exception that is not a group (task groups wrap the one that matters)."""
    while isinstance(exc, BaseExceptionGroup):
        group = cast("BaseExceptionGroup[BaseException]", exc)
        if not group.exceptions:
            return group
        exc = group.exceptions[0]
    return exc


def _replace(snap: UpstreamSnapshot, changes: dict[str, Any]) -> UpstreamSnapshot:
    return replace(snap, **changes)
