"""Retrieval ablation: the same three dev sets scored under variants of `FusionConfig`, one row per variant.

    python bench/retrieval_ablation.py --data ../shared/data/retrieval --cache /tmp/vectors.sqlite

Every variant uses the same indexes (vectors from the cache, so only the first run embeds) and the same query
vectors; only the fusion knobs change. The columns are the issue-7 target metrics. Used to choose the ONE
default configuration; never to tune per set.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from switchyard.retrieval import FusionConfig, MiniLMEncoder, SqliteVectorCache, ToolIndex
from switchyard.retrieval.bench import load_queries, load_tools, query_source
from switchyard.retrieval.metrics import mean_metrics, query_metrics

BASE = FusionConfig()
VARIANTS: list[tuple[str, str, FusionConfig]] = [
    ("default (chosen)", "hybrid", BASE),
    ("bm25 only", "bm25", BASE),
    ("dense only", "dense", BASE),
    ("no parts", "hybrid", replace(BASE, part_weight=0.0)),
    ("parts, no confidence weighting", "hybrid", replace(BASE, confidence_power=0.0)),
    ("parts encoded separately (no span pooling)", "hybrid", replace(BASE, span_pooling=False)),
    ("no server evidence", "hybrid", replace(BASE, server_weight=0.0, server_max_weight=0.0)),
    ("server text only (0.3)", "hybrid", replace(BASE, server_weight=0.3, server_max_weight=0.0)),
    ("no pseudo-relevance feedback", "hybrid", replace(BASE, feedback_weight=0.0)),
    ("dense weight 0.4", "hybrid", replace(BASE, dense_weight=0.4)),
    ("dense weight 0.6", "hybrid", replace(BASE, dense_weight=0.6)),
    ("name field (BM25F) 0.6", "hybrid", replace(BASE, name_weight=0.6)),
    ("no name coverage", "hybrid", replace(BASE, name_coverage_weight=0.0)),
    ("name coverage 0.3", "hybrid", replace(BASE, name_coverage_weight=0.3)),
    ("RRF k=60 instead of score fusion", "hybrid", replace(BASE, method="rrf", rrf_k=60.0)),
    ("RRF k=10", "hybrid", replace(BASE, method="rrf", rrf_k=10.0)),
]
SETS = ("livemcpbench", "azure_mcp", "mcp_haystack")


class _MemoEncoder:
    """Caches query vectors so every variant sees identical vectors and the sweep stays quick."""

    def __init__(self, inner: MiniLMEncoder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self._memo: dict[object, NDArray[np.float32]] = {}

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        key = ("t", *texts)
        if key not in self._memo:
            self._memo[key] = self.inner.encode(texts)
        return self._memo[key]

    def encode_spans(self, text: str, spans: Sequence[tuple[int, int]]) -> NDArray[np.float32]:
        key = ("s", text, *spans)
        if key not in self._memo:
            self._memo[key] = self.inner.encode_spans(text, spans)
        return self._memo[key]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    args = parser.parse_args()
    encoder = _MemoEncoder(MiniLMEncoder())
    cache = SqliteVectorCache(args.cache)
    indexes: dict[str, tuple[ToolIndex, list[tuple[str, list[frozenset[str]]]], dict[str, str]]] = {}
    for name in SETS:
        docs = load_tools(args.data / name)
        index = ToolIndex(encoder, cache=cache, background=False)
        index.build(docs)
        queries = [(q.id, q.query, list(q.groups)) for q in load_queries(args.data / name)]
        indexes[name] = (index, [(f"{i}\x00{t}", g) for i, t, g in queries], {d.key: d.server for d in docs})
    print("| variant | lmb R@5 | lmb nDCG@10 | lmb Compl@10 | azure R@1 | azure R@5 | hay/azure R@5 | hay/lmb R@5 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, retriever, config in VARIANTS:
        cells: dict[str, dict[str, float]] = {}
        for name, (index, queries, server_of) in indexes.items():
            index.retriever = retriever  # type: ignore[assignment]
            index.config = config
            rows: dict[str, list[dict[str, float]]] = {name: []}
            for key, groups in queries:
                qid, text = key.split("\x00", 1)
                row = query_metrics([h.key for h in index.search(text, k=10)], groups, server_of)
                rows[name].append(row)
                source = query_source(qid)
                if source:
                    rows.setdefault(f"{name}/{source}", []).append(row)
            cells.update({k: mean_metrics(v) for k, v in rows.items()})
        lmb, az = cells["livemcpbench"], cells["azure_mcp"]
        ha, hl = cells["mcp_haystack/azure_mcp"], cells["mcp_haystack/livemcpbench"]
        values = [lmb["R@5"], lmb["nDCG@10"], lmb["Compl@10"], az["R@1"], az["R@5"], ha["R@5"], hl["R@5"]]
        print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in values) + " |", flush=True)


if __name__ == "__main__":
    main()
