"""Score arithmetic shared by the retrievers: normalisation, rank fusion and server-level evidence.

Owns: the pure numpy functions that turn raw per-tool scores (BM25, cosine) into comparable numbers, fuse them,
add server-level evidence and combine the per-part results of a multi-intent query, plus `FusionConfig`, the ONE
configuration used for every data set. Does not own: computing raw scores (`index.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["FusionConfig", "combine_parts", "normalise", "rrf", "server_boost"]

FloatArray = NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class FusionConfig:
    """Knobs of the hybrid retriever. The defaults were chosen once, by measuring on all dev sets together.

    Attributes:
        method: "score" (weighted sum of normalised scores) or "rrf" (reciprocal rank fusion).
        dense_weight: weight of the dense signal against the lexical one (lexical gets 1 - dense_weight).
        server_weight: how much a tool inherits from its server's own text score (name, description, tool names).
        server_max_weight: how much a tool inherits from the best tool score of its server.
        name_weight: weight of the name-only BM25 field added to the whole-text BM25 field.
        name_coverage_weight: bonus, as a share of the best fused score, times the fraction of a tool's name
            words the whole query contains (lexical and hybrid retrievers; see `_Lexical.name_coverage`).
        part_weight: weight of the best sub-query score against the whole-query score.
        confidence_power: sub-queries are weighted by (their best cosine / the whole query's) ** this power, so a
            fragment that matches nothing well ("there are three of us") cannot push noise into the top k.
        span_pooling: embed the parts by pooling the whole query's token states over each part's span (one
            model pass) instead of encoding each part separately (one pass per part), when the encoder can.
        feedback_weight: Rocchio pseudo-relevance feedback: weight of the mean vector of the `feedback_docs` best
            tools added to each query vector before a second dense pass (0 disables it).
        feedback_docs: how many top tools feed back.
        rrf_k: the k constant of reciprocal rank fusion.
    """

    method: str = "score"
    dense_weight: float = 0.5
    server_weight: float = 0.1
    server_max_weight: float = 0.25
    name_weight: float = 0.0
    name_coverage_weight: float = 0.15
    part_weight: float = 0.7
    confidence_power: float = 2.0
    span_pooling: bool = True
    feedback_weight: float = 0.6
    feedback_docs: int = 5
    rrf_k: float = 60.0


def normalise(scores: FloatArray) -> FloatArray:
    """Map scores to roughly [0, 1]: (s - median) / (max - median), floored at 0.

    The median is the "typical unrelated document" level, so a tool that merely shares a common word is not
    lifted, and the top of every signal lands at 1 whatever its raw scale.
    """
    if scores.size == 0:
        return scores
    top = float(scores.max())
    mid = float(np.median(scores))
    if top <= mid:
        return np.zeros_like(scores)
    return np.maximum((scores - mid) / (top - mid), 0.0).astype(np.float32, copy=False)


def rrf(score_lists: Sequence[FloatArray], weights: Sequence[float], k: float) -> FloatArray:
    """Weighted reciprocal-rank fusion of full score vectors (rank 1 = highest score)."""
    out = np.zeros_like(score_lists[0])
    for scores, weight in zip(score_lists, weights, strict=True):
        ranks = np.empty(scores.shape[0], dtype=np.float32)
        ranks[np.argsort(-scores, kind="stable")] = np.arange(1, scores.shape[0] + 1, dtype=np.float32)
        out += weight / (k + ranks)
    return out


def server_boost(
    tool_scores: FloatArray, server_scores: FloatArray, server_of: NDArray[np.int32], config: FusionConfig
) -> FloatArray:
    """Add server-level evidence to tool scores: the server's own text score and its best tool's score."""
    out = tool_scores
    if config.server_weight and server_scores.size:
        out = out + config.server_weight * normalise(server_scores)[server_of]
    if config.server_max_weight and server_scores.size:
        best = np.zeros(server_scores.shape[0], dtype=np.float32)
        np.maximum.at(best, server_of, tool_scores)
        out = out + config.server_max_weight * best[server_of]
    return out.astype(np.float32, copy=False)


def combine_parts(
    whole: FloatArray,
    parts: Sequence[FloatArray],
    part_weight: float,
    confidence: Sequence[float] | None = None,
    confidence_power: float = 0.0,
) -> FloatArray:
    """Whole-query score plus `part_weight` x the best (confidence-weighted) score any sub-query gives the tool.

    Taking the max over parts (not the sum) lets each part lift its own tools into the top k without a tool
    that matches many parts vaguely crowding out one that matches one part exactly. `confidence[0]` belongs
    to the whole query, `confidence[1:]` to the parts.
    """
    if not parts:
        return whole
    weights = [part_weight] * len(parts)
    if confidence is not None and confidence_power:
        base = max(confidence[0], 1e-6)
        weights = [part_weight * min(1.0, max(c, 0.0) / base) ** confidence_power for c in confidence[1:]]
    best = np.max(np.stack([w * normalise(p) for w, p in zip(weights, parts, strict=True)]), axis=0)
    return (normalise(whole) + best).astype(np.float32, copy=False)
