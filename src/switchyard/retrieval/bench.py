"""Retrieval benchmark runner: load a data set, build an index, time it, score every query.

Owns: reading a benchmark folder (`tools.jsonl` + `queries.jsonl`, format in shared/data/README.md) into
`ToolDoc`s and `BenchQuery`s, and `run_benchmark`, which measures build time, dense readiness, per-query
latency (query encoding included) and the metrics of `metrics.py`, overall and per query-id source.

Does not own: printing (the CLI `cli/bench_retrieval.py`) or token counting (`metatools.py`).
"""

from __future__ import annotations

import json
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from switchyard.retrieval.index import ToolIndex
from switchyard.retrieval.metrics import mean_metrics, query_metrics
from switchyard.retrieval.text import ToolDoc

__all__ = ["BenchQuery", "BenchResult", "find_sets", "load_queries", "load_tools", "query_source", "run_benchmark"]


@dataclass(frozen=True, slots=True)
class BenchQuery:
    """One labelled query: its id, text, and gold groups (any member of a group satisfies it)."""

    id: str
    query: str
    groups: tuple[frozenset[str], ...]


@dataclass(slots=True)
class BenchResult:
    """Everything measured for one data set and one retriever."""

    name: str
    retriever: str
    tools: int
    queries: int
    build_s: float
    dense_ready_s: float
    p50_ms: float
    p95_ms: float
    metrics: dict[str, float]
    by_source: dict[str, dict[str, float]] = field(default_factory=dict[str, dict[str, float]])


def _rows(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_tools(folder: Path) -> list[ToolDoc]:
    """`ToolDoc`s of `folder/tools.jsonl` (key = the tool id)."""
    return [
        ToolDoc(
            key=r["id"],
            server=r["server"],
            name=r["name"],
            description=r.get("description") or "",
            input_schema=r.get("input_schema") or {},
            server_description=r.get("server_description") or "",
        )
        for r in _rows(folder / "tools.jsonl")
    ]


def load_queries(folder: Path) -> list[BenchQuery]:
    """Queries of `folder/queries.jsonl`, scored by `gold_groups` when present, else one group per gold id."""
    out: list[BenchQuery] = []
    for r in _rows(folder / "queries.jsonl"):
        groups = r.get("gold_groups") or [[g] for g in r["gold"]]
        out.append(BenchQuery(r["id"], r["query"], tuple(frozenset(g) for g in groups)))
    return out


def find_sets(data: Path) -> list[Path]:
    """`data` itself when it holds a set, else its sub-folders that do (sorted)."""
    if (data / "tools.jsonl").is_file() and (data / "queries.jsonl").is_file():
        return [data]
    return sorted(p for p in data.iterdir() if (p / "tools.jsonl").is_file() and (p / "queries.jsonl").is_file())


def query_source(query_id: str) -> str | None:
    """The source prefix of a merged set's query id (`livemcpbench:...` -> `livemcpbench`), else None."""
    head, sep, _ = query_id.partition(":")
    return head if sep else None


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_benchmark(
    folder: Path, make_index: Callable[[], ToolIndex], retriever: str, *, dense_timeout: float = 3600.0
) -> BenchResult:
    """Build an index over `folder`'s tools with `make_index()`, wait for dense vectors, then score all queries."""
    docs = load_tools(folder)
    queries = load_queries(folder)
    server_of = {d.key: d.server for d in docs}
    index = make_index()
    start = time.perf_counter()
    index.build(docs)
    build_s = time.perf_counter() - start
    index.wait_dense(dense_timeout)
    dense_ready_s = time.perf_counter() - start
    if index.dense_error is not None:
        raise index.dense_error
    index.search("warm up", k=10)
    latencies: list[float] = []
    rows: list[dict[str, float]] = []
    per_source: dict[str, list[dict[str, float]]] = defaultdict(list)
    for q in queries:
        t0 = time.perf_counter()
        hits = index.search(q.query, k=10)
        latencies.append((time.perf_counter() - t0) * 1000.0)
        row = query_metrics([h.key for h in hits], q.groups, server_of)
        rows.append(row)
        source = query_source(q.id)
        if source is not None:
            per_source[source].append(row)
    index.close()
    return BenchResult(
        name=folder.name,
        retriever=retriever,
        tools=len(docs),
        queries=len(queries),
        build_s=build_s,
        dense_ready_s=dense_ready_s,
        p50_ms=statistics.median(latencies) if latencies else 0.0,
        p95_ms=_percentile(latencies, 0.95) if latencies else 0.0,
        metrics=mean_metrics(rows),
        by_source={s: mean_metrics(r) for s, r in sorted(per_source.items())},
    )
