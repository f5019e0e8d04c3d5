"""Multi-intent query decomposition without an LLM: split a task into the parts that each need a tool.

Owns: `decompose(query)`, which cuts a query at sentence ends, semicolons, commas and coordinating words
("and", "then", "also", "after that", "as well as", "followed by") and keeps the parts that carry at least two
content terms (smaller fragments join their neighbour). Does not own: scoring or fusing the parts (`index.py`).

The split words are English conjunctions and sequencing adverbs: generic grammar, not a vocabulary fitted to
any benchmark.
"""

from __future__ import annotations

import re

from switchyard.retrieval.text import analyse

__all__ = ["Span", "decompose", "decompose_spans"]

# Sentence ends need whitespace after them so "report.pdf" or "v1.2" stay whole.
_SENTENCE = re.compile(r"(?<=[.!?;:])\s+|\n+")
_CONNECTIVE = (
    r"(?:and\s+then|and\s+also|and|then|after\s+that|afterwards|as\s+well\s+as|followed\s+by|finally|next|also)"
)
_CLAUSE = re.compile(
    rf"\s*,\s*(?:(?:{_CONNECTIVE}|or)\b[\s,]*)*|\s+(?:{_CONNECTIVE}\b[\s,]*)+",
    re.IGNORECASE,
)


Span = tuple[int, int]
_TRIM = " ,.;:!?\t\n"


def _pieces(pattern: re.Pattern[str], text: str, start: int, end: int) -> list[Span]:
    """Spans of `text[start:end]` between the matches of `pattern`."""
    out: list[Span] = []
    pos = start
    for match in pattern.finditer(text, start, end):
        out.append((pos, match.start()))
        pos = match.end()
    out.append((pos, end))
    return out


def _strip(text: str, span: Span) -> Span:
    a, b = span
    while a < b and text[a] in _TRIM:
        a += 1
    while b > a and text[b - 1] in _TRIM:
        b -= 1
    return a, b


def _terms(text: str, span: Span) -> int:
    return len(analyse(text[span[0] : span[1]]))


def decompose_spans(query: str, *, min_terms: int = 2, max_parts: int = 8) -> list[Span]:
    """Character spans `(start, end)` of the sub-queries of `query`; empty when it has a single part.

    Args:
        query: the user's request.
        min_terms: content terms a fragment needs to stand alone; shorter ones are joined to a neighbour.
        max_parts: the parts with most content terms are kept when there are more.
    """
    spans: list[Span] = []
    for sentence in _pieces(_SENTENCE, query, 0, len(query)):
        pending: Span | None = None
        first_in_sentence = len(spans)
        for piece in _pieces(_CLAUSE, query, *sentence):
            a, b = _strip(query, piece)
            if a >= b:
                continue
            candidate = (pending[0], b) if pending else (a, b)
            if _terms(query, candidate) < min_terms:
                pending = candidate
                continue
            spans.append(candidate)
            pending = None
        if pending is not None and _terms(query, pending) > 0:
            if len(spans) > first_in_sentence:  # a trailing fragment joins the sentence's last part
                spans[-1] = (spans[-1][0], pending[1])
            else:
                spans.append(pending)
    if len(spans) <= 1:
        return []
    if len(spans) > max_parts:
        keep = sorted(sorted(range(len(spans)), key=lambda i: -_terms(query, spans[i]))[:max_parts])
        spans = [spans[i] for i in keep]
    return spans


def decompose(query: str, *, min_terms: int = 2, max_parts: int = 8) -> list[str]:
    """The sub-queries of `query` as text (substrings of it); empty when it has a single part.

    Example: "Find the weather in Paris, then email it to Bob" -> ["Find the weather in Paris", "email it to Bob"].
    """
    return [query[a:b] for a, b in decompose_spans(query, min_terms=min_terms, max_parts=max_parts)]
