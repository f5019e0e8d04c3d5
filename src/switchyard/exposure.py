"""Exposure modes: which tools a client sees, and the `search_tools` / `call_tool` meta-tools.

Owns: keeping a `ToolIndex` in step with the federated catalog (only changed tools are re-indexed; vectors are
cached in the store), the three modes (`all`: every tool; `search`: the meta-tools plus pinned tools;
`dynamic`: on a legacy session, tools found by `search_tools` join a bounded, least-recently-used working set
and the client is told the list changed), and answering the meta-tools. Does not own ranking (retrieval/),
wire handling (server/) or dispatch (gateway.py).

On the stateless 2026-07-28 revision there is no session to hold a working set, so `dynamic` behaves like
`search` there: the client calls found tools through `call_tool` (or by name, which always works).
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from switchyard.catalog.catalog import Catalog, Entry
from switchyard.config import GatewayConfig
from switchyard.errors import InvalidRequest
from switchyard.retrieval.metatools import CALL_TOOL, SEARCH_TOOLS, search_tools_definition
from switchyard.retrieval.text import ToolDoc
from switchyard.upstream.base import JsonObject, UpstreamSnapshot

if TYPE_CHECKING:
    # Only a gateway that searches loads numpy, bm25s and onnxruntime (imported in the functions below).
    from switchyard.retrieval.encoder import Encoder
    from switchyard.retrieval.vector_cache import VectorCache

__all__ = ["META_NAMES", "Exposure", "ToolFinder", "WorkingSet"]

logger = logging.getLogger("switchyard.exposure")

META_NAMES = frozenset({str(SEARCH_TOOLS["name"]), str(CALL_TOOL["name"])})


def make_encoder(config: GatewayConfig) -> Encoder:
    """The configured dense encoder (loaded lazily, in the index's background thread)."""
    from switchyard.retrieval.encoder import MiniLMEncoder  # noqa: PLC0415
    from switchyard.retrieval.openai_encoder import OpenAIEncoder  # noqa: PLC0415

    settings = config.switchyard.retrieval
    if settings.encoder == "openai" and settings.openai is not None:
        o = settings.openai
        return OpenAIEncoder(o.base_url, o.model, dim=o.dim, api_key_env=o.api_key_env)
    return MiniLMEncoder(runtime=settings.runtime)


def make_cache(config: GatewayConfig) -> VectorCache:
    """Vectors persist next to the rest of the store; an unusable path falls back to memory with a warning."""
    from switchyard.retrieval.vector_cache import MemoryVectorCache, SqliteVectorCache  # noqa: PLC0415

    path = config.switchyard.store.resolved_path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteVectorCache(path)
    except Exception as exc:  # StoreError or OSError: search still works, restarts re-embed
        logger.warning("vector cache unavailable at %s (%s); using memory", path, exc)
        return MemoryVectorCache()


def _server_description(name: str, config: GatewayConfig, snap: UpstreamSnapshot | None) -> str:
    cfg = config.servers.get(name)
    if cfg is not None and cfg.description:
        return cfg.description
    if snap is None:
        return ""
    info = snap.server_info or {}
    return str(info.get("description") or info.get("title") or "") or (snap.instructions or "")[:500]


class ToolFinder:
    """A hybrid index over the catalog's tools, updated incrementally as the catalog changes."""

    def __init__(self, config: GatewayConfig, *, encoder: Encoder | None = None, cache: VectorCache | None = None):
        from switchyard.retrieval.index import ToolIndex  # noqa: PLC0415

        settings = config.switchyard.retrieval
        self.config = config
        retriever = settings.retriever
        if encoder is None and retriever != "bm25":
            encoder = make_encoder(config)
        self.index = ToolIndex(encoder, retriever=retriever, cache=cache if cache is not None else make_cache(config))
        self._docs: dict[str, ToolDoc] = {}

    def sync(self, catalog: Catalog, snapshots: Mapping[str, UpstreamSnapshot | None]) -> None:
        """Bring the index in line with `catalog`; only new, changed or removed tools are touched."""
        docs: dict[str, ToolDoc] = {}
        for entry in catalog.tools.values():
            d = entry.definition
            docs[entry.name] = ToolDoc(
                key=entry.name,
                server=entry.server,
                name=entry.original,
                description=str(d.get("description") or d.get("title") or ""),
                input_schema=d.get("inputSchema") or {},
                server_description=_server_description(entry.server, self.config, snapshots.get(entry.server)),
            )
        changed = [doc for key, doc in docs.items() if self._docs.get(key) != doc]
        removed = [key for key in self._docs if key not in docs]
        if not self._docs:
            self.index.build(docs.values())
        elif changed or removed:
            self.index.update(changed, removed)
        self._docs = docs

    async def search(
        self, query: str, k: int, server: str | None = None, only: Collection[str] | None = None
    ) -> list[str]:
        """Federated names of the `k` best tools for `query`, among `only` when given (query encoding runs off
        the event loop)."""
        if only is not None and len(only) >= len(self._docs):
            # A caller's visible tools are a subset of the catalog the index mirrors: as many means all of them
            # (no mask to build); names the index has that the catalog lost are dropped by the caller anyway.
            only = None
        hits = await anyio.to_thread.run_sync(lambda: self.index.search(query, k, server, only))
        return [hit.key for hit in hits]

    def close(self) -> None:
        """Stop the background embedding worker."""
        self.index.close()


class WorkingSet:
    """The tools one legacy session has found: bounded, least recently used evicted first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._names: OrderedDict[str, None] = OrderedDict()

    def add(self, names: Sequence[str]) -> bool:
        """Add or refresh names (the first name is the most relevant); True if the set's members changed."""
        before = list(self._names)
        for name in reversed(names):
            self._names[name] = None
            self._names.move_to_end(name)
        while len(self._names) > self.limit:
            self._names.popitem(last=False)
        return set(before) != set(self._names)

    def touch(self, name: str) -> None:
        """Mark a tool as just used."""
        if name in self._names:
            self._names.move_to_end(name)

    def names(self) -> list[str]:
        """Members, most recently used last."""
        return list(self._names)


class Exposure:
    """What `tools/list` shows in the configured mode, and the meta-tools' answers."""

    def __init__(self, config: GatewayConfig, finder: ToolFinder | None) -> None:
        self.mode = config.switchyard.exposure
        self.pinned = tuple(config.switchyard.pinned)
        self.default_k = config.switchyard.retrieval.default_k
        self.working_limit = config.switchyard.working_set
        self.finder = finder
        self._meta: tuple[JsonObject, ...] = (search_tools_definition(self.default_k), dict(CALL_TOOL))

    @property
    def meta_tools(self) -> list[JsonObject]:
        """The meta-tool definitions, as `tools/list` entries (`search_tools` with the configured default k)."""
        return [dict(d) for d in self._meta]

    def listable(self, name: str) -> bool:
        """Whether a found tool may join a working set: not pinned (listed anyway, so it would only take a
        slot) and not named like a meta-tool (an upstream tool of that name is reached through `call_tool`)."""
        return name not in self.pinned and name not in META_NAMES

    def list_tools(self, catalog: Catalog, all_tools: list[JsonObject], working: WorkingSet | None) -> list[JsonObject]:
        """The tool list for one client: everything in `all` mode, else meta-tools, pinned, then found tools
        (never a second tool under a meta-tool's name)."""
        if self.mode == "all":
            return all_tools
        out = self.meta_tools
        names = [n for n in dict.fromkeys(self.pinned) if n not in META_NAMES]
        if working is not None:
            names += [n for n in working.names() if self.listable(n)]
        out += [catalog.tools[n].public() for n in names if n in catalog.tools]
        return out

    async def search(self, catalog: Catalog, arguments: Mapping[str, Any]) -> tuple[JsonObject, list[str]]:
        """Answer `search_tools`: the result, and the names found (most relevant first)."""
        if self.finder is None:
            raise InvalidRequest("search_tools is not available: exposure mode is 'all'")
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            raise InvalidRequest("search_tools needs a non-empty 'query' string")
        k = arguments.get("k", self.default_k)
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 50:
            raise InvalidRequest("search_tools: 'k' must be an integer from 1 to 50")
        server = arguments.get("server")
        if server is not None and not isinstance(server, str):
            raise InvalidRequest("search_tools: 'server' must be a string")
        # Only among the tools this caller may see, so hidden ones neither show nor take places in the `k`.
        names = [n for n in await self.finder.search(query, k, server, catalog.tools.keys()) if n in catalog.tools]
        tools = [_found(catalog.tools[n]) for n in names]
        text = json.dumps(tools, ensure_ascii=False, indent=1) if tools else "No matching tools."
        return {"content": [{"type": "text", "text": text}], "structuredContent": {"tools": tools}}, names


def _found(entry: Entry) -> JsonObject:
    d = entry.definition
    out: JsonObject = {"name": entry.name, "server": entry.server, "description": d.get("description", "")}
    out["inputSchema"] = d.get("inputSchema", {"type": "object"})
    return out
