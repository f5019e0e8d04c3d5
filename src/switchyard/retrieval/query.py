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

__all__ = ["decompose"]

# Sentence ends need whitespace after them so "report.pdf" or "v1.2" stay whole.
_SENTENCE = re.compile(r"(?<=[.!?;:])\s+|\n+")
_CONNECTIVE = (
    r"(?:and\s+then|and\s+also|and|then|after\s+that|afterwards|as\s+well\s+as|followed\s+by|finally|next|also)"
)
_CLAUSE = re.compile(
    rf"\s*,\s*(?:(?:{_CONNECTIVE}|or)\b[\s,]*)*|\s+(?:{_CONNECTIVE}\b[\s,]*)+",
    re.IGNORECASE,
)


def decompose(query: str, *, min_terms: int = 2, max_parts: int = 8) -> list[str]:
    """Return the sub-queries of `query` (without the whole query itself); empty when it has a single part.

    Args:
        query: the user's request.
        min_terms: content terms a fragment needs to stand alone; shorter ones are joined to the previous part.
        max_parts: the longest parts are kept when there are more.
    """
    parts: list[str] = []
    for sentence in _SENTENCE.split(query.strip()):
        pending = ""
        for raw in _CLAUSE.split(sentence):
            fragment = raw.strip(" ,.;:!?")
            if not fragment:
                continue
            candidate = f"{pending} {fragment}".strip()
            if len(analyse(candidate)) < min_terms:
                pending = candidate
                continue
            parts.append(candidate)
            pending = ""
        if pending:
            if parts and len(analyse(pending)) > 0:
                parts[-1] = f"{parts[-1]} {pending}"
            elif analyse(pending):
                parts.append(pending)
    if len(parts) <= 1:
        return []
    if len(parts) > max_parts:
        keep = sorted(sorted(range(len(parts)), key=lambda i: -len(analyse(parts[i])))[:max_parts])
        parts = [parts[i] for i in keep]
    return parts
