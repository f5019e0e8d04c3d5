"""`ToolIndex`: hybrid lexical + dense search over the federated tool catalog.

Owns: the BM25 index over tools and servers (bm25s), the dense vectors (built in a background thread so lexical
search answers at once), keeping both current under `build` / `update`, and `search`, which scores the whole
query and each of its parts (`query.decompose`), fuses signals and parts (`fusion`), adds server-level
evidence and returns ranked `Hit`s.

Does not own: the tool text (`text.py`), embeddings (`encoder.py`), vector persistence (`vector_cache.py`) or
exposing results to MCP clients (the gateway's catalog and `metatools.py`).

Thread model: every build/update makes a new immutable `_Snapshot` that `search` reads without locks; the
dense worker swaps in a copy with vectors when it is done, unless a newer snapshot superseded its input.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

import bm25s  # pyright: ignore[reportMissingTypeStubs]
import numpy as np
from numpy.typing import NDArray

from switchyard.retrieval.encoder import Encoder, SpanEncoder, l2_normalise
from switchyard.retrieval.fusion import FusionConfig, combine_parts, normalise, rrf, server_boost
from switchyard.retrieval.kinds import RETRIEVERS, Retriever
from switchyard.retrieval.query import decompose_spans
from switchyard.retrieval.text import ToolDoc, analyse, dense_text, lexical_terms, server_text, split_identifier
from switchyard.retrieval.vector_cache import MemoryVectorCache, VectorCache, text_hash

__all__ = ["RETRIEVERS", "Hit", "Retriever", "ToolIndex"]

logger = logging.getLogger("switchyard.retrieval")
# bm25s sets its own logger to DEBUG when imported, which bypasses the root level the gateway configures and put
# a "Building index from tokens" line per field in the gateway's log at every (re)index: back to the default.
logging.getLogger("bm25s").setLevel(logging.NOTSET)

FloatArray = NDArray[np.float32]
_EMBED_CHUNK = 256


@runtime_checkable
class _Releasing(Protocol):
    """An encoder that can give back memory held since a bulk job (`MiniLMEncoder.release`)."""

    def release(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: the federated tool key, its fused score (higher is better) and its server."""

    key: str
    score: float
    server: str


class _Field:
    """One BM25 field (bm25s) over pre-analysed terms; unknown query terms are ignored."""

    def __init__(self, corpus: list[list[str]]) -> None:
        retriever: Any = bm25s.BM25()
        retriever.index([terms or ["\x00"] for terms in corpus], show_progress=False)
        self._retriever = retriever
        self._vocab: dict[str, int] = dict(retriever.vocab_dict)
        self.size = len(corpus)

    def scores(self, terms: list[str]) -> FloatArray:
        known = [t for t in terms if t in self._vocab]
        if not known:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._retriever.get_scores(known), dtype=np.float32)


class _Lexical:
    """BM25 over tool texts, tool names alone, and server texts (name, description and its tools' names)."""

    def __init__(self, docs: Sequence[ToolDoc], servers: Sequence[str], server_of: NDArray[np.int32]) -> None:
        self._server_of = server_of
        self.tools = _Field([lexical_terms(d) for d in docs])
        # Names get their own field (BM25F-style), used when `FusionConfig.name_weight` > 0.
        name_terms = [analyse(split_identifier(d.name)) for d in docs]
        self.names = _Field(name_terms)
        # For `name_coverage`: which tools' names hold each term, and how many distinct terms each name has.
        name_sets = [set(t) for t in name_terms]
        holders: dict[str, list[int]] = {}
        for i, terms in enumerate(name_sets):
            for term in terms:
                holders.setdefault(term, []).append(i)
        self._name_holders = {t: np.array(ix, dtype=np.intp) for t, ix in holders.items()}
        self._name_sizes = np.array([max(1, len(t)) for t in name_sets], dtype=np.float32)
        server_terms: list[list[str]] = [[] for _ in servers]
        described: set[int] = set()
        for doc, s, terms in zip(docs, server_of.tolist(), name_terms, strict=True):
            if s not in described:
                server_terms[s] += analyse(server_text(doc))
                described.add(s)
            server_terms[s] += terms
        self.servers = _Field(server_terms)

    def name_coverage(self, terms: list[str]) -> FloatArray:
        """Per tool, the share of its name's distinct terms that occur in `terms` (0 to 1).

        Names say what a tool does in a few words (`secret list`, `cluster get`); unlike BM25 on the name, a
        short name whose every word the query uses scores higher than a long one that shares a word with it.
        """
        hits = np.zeros(self._name_sizes.shape[0], dtype=np.float32)
        for term in set(terms):
            holders = self._name_holders.get(term)
            if holders is not None:
                hits[holders] += 1.0
        return hits / self._name_sizes

    def scores(self, terms: list[str], name_weight: float) -> tuple[FloatArray, FloatArray]:
        """(tool scores, server scores) for `terms`."""
        tools, servers, _ = self.scores_and_evidence(terms, name_weight)
        return tools, servers

    def scores_and_evidence(
        self, terms: list[str], name_weight: float
    ) -> tuple[FloatArray, FloatArray, NDArray[np.bool_]]:
        """`scores`, plus per tool whether `terms` share a word with its text or its server's (BM25 > 0 in
        either), read off the same BM25 pass."""
        raw = self.tools.scores(terms)
        servers = self.servers.scores(terms)
        evidence = (raw > 0) | (servers[self._server_of] > 0)
        tools = raw
        if name_weight:
            tools = (normalise(raw) + name_weight * normalise(self.names.scores(terms))).astype(np.float32)
        return tools, servers, evidence


@dataclass(frozen=True, slots=True)
class _Snapshot:
    generation: int
    docs: tuple[ToolDoc, ...]
    servers: tuple[str, ...]
    server_of: NDArray[np.int32]
    lexical: _Lexical | None
    vectors: FloatArray | None = None  # (tools, dim), unit rows
    server_vectors: FloatArray | None = None  # (servers, dim), unit centroids of their tools


def _snapshot(generation: int, docs: Sequence[ToolDoc]) -> _Snapshot:
    servers = tuple(dict.fromkeys(d.server for d in docs))
    index = {s: i for i, s in enumerate(servers)}
    server_of = np.array([index[d.server] for d in docs], dtype=np.int32)
    lexical = _Lexical(docs, servers, server_of) if docs else None
    return _Snapshot(generation, tuple(docs), servers, server_of, lexical)


def _dense_scores(snap: _Snapshot, q: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Cosines of every query row with every tool and server, one matrix product each (rows = queries)."""
    assert snap.vectors is not None
    assert snap.server_vectors is not None
    qt = np.ascontiguousarray(q.T)  # a contiguous right operand keeps BLAS on its fast path
    return np.ascontiguousarray((snap.vectors @ qt).T), np.ascontiguousarray((snap.server_vectors @ qt).T)


class ToolIndex:
    """Search tools by natural-language query with BM25, dense vectors, or both fused (`hybrid`).

    `build` replaces the catalog, `update` applies a `list_changed`; both return as soon as lexical search is
    ready. Dense vectors are computed in a background thread (cached vectors are reused, so only new or changed
    tool texts are embedded); until they are ready a hybrid index answers lexically. `dense_ready` tells.
    """

    def __init__(
        self,
        encoder: Encoder | None = None,
        *,
        retriever: Retriever = "hybrid",
        cache: VectorCache | None = None,
        config: FusionConfig | None = None,
        background: bool = True,
    ) -> None:
        """Create an empty index.

        Args:
            encoder: the dense encoder; required unless `retriever` is "bm25".
            retriever: "bm25", "dense" or "hybrid".
            cache: where tool vectors persist (default: in memory only).
            config: fusion settings (default: the one tuned configuration).
            background: compute dense vectors in a worker thread (False: inside `build`/`update`).
        """
        if retriever not in RETRIEVERS:
            raise ValueError(f"retriever must be one of {RETRIEVERS}, not {retriever!r}")
        if retriever != "bm25" and encoder is None:
            raise ValueError(f"retriever {retriever!r} needs an encoder")
        self.retriever: Retriever = retriever
        self.encoder = encoder
        self.config = config or FusionConfig()
        self._cache: VectorCache = cache if cache is not None else MemoryVectorCache()
        self._background = background
        self._snap = _snapshot(0, ())
        self._memo: dict[str, FloatArray] = {}  # vectors of the current (and pending) catalog, by text hash
        self._memo_lock = threading.Lock()
        self._cond = threading.Condition()
        self._pending: _Snapshot | None = None
        self._worker: threading.Thread | None = None
        self._closed = False
        self.dense_error: BaseException | None = None
        self._query_encoding_failed = False
        """The last query could not be encoded (logged once per failing streak)."""

    # -- catalog changes -------------------------------------------------------------------------------------

    @property
    def docs(self) -> tuple[ToolDoc, ...]:
        """The indexed tools, in index order."""
        return self._snap.docs

    @property
    def dense_ready(self) -> bool:
        """True when dense vectors match the current catalog (always True for a "bm25" index)."""
        snap = self._snap
        return self.retriever == "bm25" or not snap.docs or snap.vectors is not None

    def build(self, docs: Iterable[ToolDoc]) -> None:
        """Replace the whole catalog. Lexical search is ready on return; dense follows (see `dense_ready`)."""
        unique = {d.key: d for d in docs}
        self._install(list(unique.values()))

    def update(self, changed: Iterable[ToolDoc] = (), removed: Iterable[str] = ()) -> None:
        """Apply a catalog change: add or replace `changed` tools, drop the `removed` keys."""
        current = {d.key: d for d in self._snap.docs}
        for key in removed:
            current.pop(key, None)
        for doc in changed:
            current[doc.key] = doc
        self._install(list(current.values()))

    def wait_dense(self, timeout: float | None = None) -> bool:
        """Block until `dense_ready` (or `timeout` seconds); return `dense_ready`."""
        with self._cond:
            self._cond.wait_for(lambda: self.dense_ready or self.dense_error is not None, timeout)
        return self.dense_ready

    def close(self) -> None:
        """Stop the background worker (pending work is dropped)."""
        with self._cond:
            self._closed = True
            self._pending = None
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=30)

    def _install(self, docs: list[ToolDoc]) -> None:
        snap = _snapshot(self._snap.generation + 1, docs)
        if self.retriever != "bm25" and docs:
            # Vectors already in memory (an update touching few tools) make dense ready at once.
            vectors = self._vectors_from_memo(snap)
            if vectors is not None:
                snap = self._with_vectors(snap, vectors)
        with self._cond:
            self._snap = snap
            self.dense_error = None
            if snap.vectors is None and self.retriever != "bm25" and docs:
                self._pending = snap
            self._cond.notify_all()  # the worker (new work), and `wait_dense` (this snapshot may be ready at once)
        if self._pending is not None:
            if self._background:
                self._ensure_worker()
            else:
                self._drain()

    # -- dense vectors ---------------------------------------------------------------------------------------

    def _hashes(self, snap: _Snapshot) -> list[str]:
        assert self.encoder is not None
        name = self.encoder.name
        return [text_hash(name, dense_text(d)) for d in snap.docs]

    def _vectors_from_memo(self, snap: _Snapshot) -> FloatArray | None:
        hashes = self._hashes(snap)
        with self._memo_lock:
            found = [self._memo.get(h) for h in hashes]
        if any(v is None for v in found):
            return None
        return np.stack([v for v in found if v is not None])

    def _with_vectors(self, snap: _Snapshot, vectors: FloatArray) -> _Snapshot:
        sums = np.zeros((len(snap.servers), vectors.shape[1]), dtype=np.float32)
        np.add.at(sums, snap.server_of, vectors)
        return replace(snap, vectors=vectors, server_vectors=l2_normalise(sums))

    def _ensure_worker(self) -> None:
        with self._cond:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run_worker, name="switchyard-dense", daemon=True)
                self._worker.start()

    def _run_worker(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._closed)
                if self._closed:
                    return
            self._drain()

    def _drain(self) -> None:
        """Embed what the pending snapshot lacks, then install it unless a newer one arrived meanwhile."""
        with self._cond:
            snap, self._pending = self._pending, None
        if snap is None:
            return
        try:
            vectors = self._embed(snap)
        except Exception as exc:  # observer-like: lexical search keeps working, the error is kept and logged
            logger.exception("dense index build failed; serving lexical results only")
            with self._cond:
                if self._snap.generation == snap.generation:  # an error of a superseded job is not this one's
                    self.dense_error = exc
                self._cond.notify_all()
            return
        if vectors is None:
            with self._cond:
                self._cond.notify_all()  # superseded: whoever waits re-checks the current snapshot
            return
        ready = self._with_vectors(snap, vectors)
        with self._cond:
            if self._snap.generation == snap.generation:
                self._snap = ready
            self._cond.notify_all()

    def _embed(self, snap: _Snapshot) -> FloatArray | None:
        assert self.encoder is not None
        hashes = self._hashes(snap)
        with self._memo_lock:
            missing = [h for h in dict.fromkeys(hashes) if h not in self._memo]
        # A cached row of another size is another vector space (a changed `dim`): embedded again, not mixed in.
        cached = {h: v for h, v in self._cache.get_many(missing).items() if v.shape[0] == self.encoder.dim}
        with self._memo_lock:
            self._memo.update(cached)
            todo = [i for i, h in enumerate(hashes) if h not in self._memo]
        todo_unique = list({hashes[i]: i for i in todo}.values())
        try:
            for start in range(0, len(todo_unique), _EMBED_CHUNK):
                if self._snap.generation != snap.generation or self._closed:
                    return None  # superseded: what was embedded so far stays in the memo and the cache
                chunk = todo_unique[start : start + _EMBED_CHUNK]
                vecs = self.encoder.encode([dense_text(snap.docs[i]) for i in chunk])
                fresh = {hashes[i]: vecs[row] for row, i in enumerate(chunk)}
                self._cache.put_many(fresh)
                with self._memo_lock:
                    self._memo.update(fresh)
        finally:
            if len(todo_unique) > _EMBED_CHUNK and isinstance(self.encoder, _Releasing):
                self.encoder.release()  # the bulk job is over: hand back what its big batches held
        live = set(hashes)
        with self._memo_lock:
            if self._snap.generation == snap.generation:  # an older job must not evict a newer catalog's vectors
                for stale in [h for h in self._memo if h not in live]:
                    del self._memo[stale]
            return np.stack([self._memo[h] for h in hashes]).astype(np.float32, copy=False)

    # -- search ----------------------------------------------------------------------------------------------

    def search(
        self, query: str, k: int = 10, server: str | None = None, only: Collection[str] | None = None
    ) -> list[Hit]:
        """Return the `k` best tools for `query`, optionally only from `server` and only among the keys `only`
        (a caller's visible tools: hidden ones must not use up the `k` places).

        With lexical scores alone (the `bm25` retriever, or before the dense vectors are ready) only tools with
        evidence are returned: ones whose text, or whose server's, shares a word with the query. Dense
        similarity ranks every tool, so `dense` and `hybrid` return `k` tools whenever the catalog has them.
        """
        snap = self._snap
        if not snap.docs or k <= 0:
            return []
        scores, evidence = self._scores(query, snap)
        if evidence is not None:
            # Words alone: a tool that shares none with the query (nor does its server) has no rank, only noise.
            scores = np.where(evidence, scores, -np.inf)
        if server is not None:
            if server not in snap.servers:
                return []
            scores = np.where(snap.server_of == snap.servers.index(server), scores, -np.inf)
        if only is not None:
            allowed = np.fromiter((d.key in only for d in snap.docs), dtype=np.bool_, count=len(snap.docs))
            scores = np.where(allowed, scores, -np.inf)
        k = min(k, int(np.isfinite(scores).sum()))
        if k <= 0:
            return []
        top: NDArray[np.intp] = np.argpartition(-scores, k - 1)[:k]
        order: list[int] = top[np.argsort(-scores[top], kind="stable")].tolist()
        return [Hit(snap.docs[i].key, float(scores[i]), snap.docs[i].server) for i in order]

    def scores(self, query: str, snap: _Snapshot | None = None) -> FloatArray:
        """Fused score of every tool for `query` (index order); exposed for benchmarks and diagnostics."""
        return self._scores(query, snap or self._snap)[0]

    def _scores(self, query: str, snap: _Snapshot) -> tuple[FloatArray, NDArray[np.bool_] | None]:
        """`scores`, and with lexical scores alone which tools have any evidence (None when dense ranks)."""
        terms = analyse(query)
        fused, evidence = self._fused(query, terms, snap)
        weight = self.config.name_coverage_weight
        if weight and self.retriever != "dense" and snap.lexical is not None and fused.size:
            # Scaled by the best score so the bonus means the same whatever the fused scores' range.
            top = max(float(fused.max()), 0.0)
            fused = (fused + weight * top * snap.lexical.name_coverage(terms)).astype(np.float32)
        return fused, evidence

    def _fused(self, query: str, terms: list[str], snap: _Snapshot) -> tuple[FloatArray, NDArray[np.bool_] | None]:
        """Whole query and parts, each signal normalised and fused (`terms` = the whole query, analysed); with
        lexical scores alone, also which tools share a word with the whole query (parts' words are its words)."""
        cfg = self.config
        spans = decompose_spans(query) if cfg.part_weight > 0 else []
        texts = [query, *(query[a:b] for a, b in spans)]
        lexical: list[tuple[FloatArray, FloatArray]] = []
        evidence: NDArray[np.bool_] | None = None

        def words_alone() -> tuple[FloatArray, NDArray[np.bool_] | None]:
            nonlocal lexical, evidence
            if not lexical and snap.lexical is not None:
                whole, servers, evidence = snap.lexical.scores_and_evidence(terms, cfg.name_weight)
                lexical = [(whole, servers), *(snap.lexical.scores(analyse(t), cfg.name_weight) for t in texts[1:])]
            fused = [self._fuse([lex], snap) for lex in lexical]
            return combine_parts(fused[0], fused[1:], cfg.part_weight), evidence

        if (self.retriever != "dense" or snap.vectors is None) and snap.lexical is not None:
            whole, servers, evidence = snap.lexical.scores_and_evidence(terms, cfg.name_weight)
            lexical = [(whole, servers), *(snap.lexical.scores(analyse(t), cfg.name_weight) for t in texts[1:])]
        if self.retriever == "bm25" or snap.vectors is None or snap.server_vectors is None:
            return words_alone()

        assert self.encoder is not None
        try:
            if spans and cfg.span_pooling and isinstance(self.encoder, SpanEncoder):
                q = self.encoder.encode_spans(query, spans)
            else:
                q = self.encoder.encode(texts)
        except Exception as exc:  # an embeddings endpoint that went down: the tool vectors are cached, words work
            if not self._query_encoding_failed:
                logger.warning("query encoding failed (%s); serving lexical results until it works again", exc)
            self._query_encoding_failed = True
            return words_alone()
        if self._query_encoding_failed:
            logger.info("query encoding works again; serving hybrid results")
            self._query_encoding_failed = False
        tools, servers = _dense_scores(snap, q)  # (texts, tools), (texts, servers)
        confidence = tools.max(axis=1).tolist()
        fused = [self._fuse([*lexical[j : j + 1], (tools[j], servers[j])], snap) for j in range(len(texts))]
        if cfg.feedback_weight > 0:
            # Pseudo-relevance feedback (Rocchio): move each query vector towards its best tools, re-score once.
            k = min(cfg.feedback_docs, tools.shape[1])
            top = np.stack([np.argpartition(-f, k - 1)[:k] for f in fused])
            q = l2_normalise(q + cfg.feedback_weight * snap.vectors[top].mean(axis=1))
            tools, servers = _dense_scores(snap, q)
            fused = [self._fuse([*lexical[j : j + 1], (tools[j], servers[j])], snap) for j in range(len(texts))]
        return combine_parts(fused[0], fused[1:], cfg.part_weight, confidence, cfg.confidence_power), None

    def _fuse(self, signals: list[tuple[FloatArray, FloatArray]], snap: _Snapshot) -> FloatArray:
        cfg = self.config
        weights = [1.0 - cfg.dense_weight, cfg.dense_weight] if len(signals) == 2 else [1.0]
        if cfg.method == "rrf" and len(signals) == 2:
            tools = rrf([s[0] for s in signals], weights, cfg.rrf_k)
            servers = rrf([s[1] for s in signals], weights, cfg.rrf_k)
        else:
            tools = np.zeros_like(signals[0][0])
            servers = np.zeros_like(signals[0][1])
            for weight, (tool_scores, server_scores) in zip(weights, signals, strict=True):
                tools += weight * normalise(tool_scores)
                servers += weight * normalise(server_scores)
        return server_boost(normalise(tools), servers, snap.server_of, cfg)
