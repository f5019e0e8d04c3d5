"""Retrieval metrics, exactly as defined in the benchmark data README (shared/data/README.md).

Owns: per-query R@k, nDCG@10, Compl@10 and srvR@5 over *gold groups* (any member of a group satisfies it), and
their averaging. Does not own: running retrievers or loading data (`bench.py`).

Definitions:
- R@k: share of the query's gold groups with a member in the top k.
- nDCG@10: binary gain at the rank of the first hit of each group, ideal = all groups at the top.
- Compl@10: 1 if every gold group has a member in the top 10, else 0.
- srvR@5: R@5 on the ranking of servers (servers in order of first occurrence in the tool ranking); the gold
  server groups are the distinct server sets of the gold groups.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

__all__ = [
    "complete_at_k",
    "first_hit_ranks",
    "mean_metrics",
    "ndcg_at_k",
    "query_metrics",
    "recall_at_k",
    "server_groups",
    "server_ranking",
]

Groups = Sequence[Collection[str]]


def first_hit_ranks(ranked: Sequence[str], groups: Groups) -> list[int | None]:
    """1-based rank of the first member of each group in `ranked`, or None when absent."""
    position: dict[str, int] = {}
    for i, key in enumerate(ranked, start=1):
        position.setdefault(key, i)
    ranks: list[int | None] = []
    for group in groups:
        hits = [position[m] for m in group if m in position]
        ranks.append(min(hits) if hits else None)
    return ranks


def recall_at_k(ranked: Sequence[str], groups: Groups, k: int) -> float:
    """Share of gold groups with a member in the top `k` (0.0 for a query without groups)."""
    if not groups:
        return 0.0
    ranks = first_hit_ranks(ranked[:k], groups)
    return sum(r is not None for r in ranks) / len(groups)


def ndcg_at_k(ranked: Sequence[str], groups: Groups, k: int = 10) -> float:
    """Binary-gain nDCG: gain 1 at each group's first hit within the top `k`; ideal puts every group at the top."""
    if not groups:
        return 0.0
    ranks = first_hit_ranks(ranked[:k], groups)
    dcg = sum(1.0 / math.log2(r + 1) for r in ranks if r is not None)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(groups), k) + 1))
    return dcg / ideal


def complete_at_k(ranked: Sequence[str], groups: Groups, k: int = 10) -> float:
    """1.0 if every gold group has a member in the top `k`, else 0.0."""
    if not groups:
        return 0.0
    return float(all(r is not None for r in first_hit_ranks(ranked[:k], groups)))


def server_ranking(ranked: Sequence[str], server_of: Mapping[str, str]) -> list[str]:
    """Servers in order of their first tool in `ranked`."""
    seen: dict[str, None] = {}
    for key in ranked:
        seen.setdefault(server_of[key], None)
    return list(seen)


def server_groups(groups: Groups, server_of: Mapping[str, str]) -> list[frozenset[str]]:
    """Distinct server sets of the gold groups, in first-seen order."""
    out: dict[frozenset[str], None] = {}
    for group in groups:
        out.setdefault(frozenset(server_of[m] for m in group), None)
    return list(out)


def query_metrics(ranked: Sequence[str], groups: Groups, server_of: Mapping[str, str]) -> dict[str, float]:
    """Every metric for one query: R@1, R@5, R@10, nDCG@10, Compl@10, srvR@5."""
    servers = server_ranking(ranked, server_of)
    return {
        "R@1": recall_at_k(ranked, groups, 1),
        "R@5": recall_at_k(ranked, groups, 5),
        "R@10": recall_at_k(ranked, groups, 10),
        "nDCG@10": ndcg_at_k(ranked, groups, 10),
        "Compl@10": complete_at_k(ranked, groups, 10),
        "srvR@5": recall_at_k(servers, server_groups(groups, server_of), 5),
    }


def mean_metrics(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Average of per-query metric dicts (keys of the first row); empty input gives an empty dict."""
    if not rows:
        return {}
    return {name: sum(r[name] for r in rows) / len(rows) for name in rows[0]}
