"""The names of the retrievers (`Retriever`), in a module light enough for the CLI's parser to import.

Owns nothing else; `index.py` implements them (and re-exports these names).
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["RETRIEVERS", "Retriever"]

Retriever = Literal["bm25", "dense", "hybrid"]
RETRIEVERS: tuple[Retriever, ...] = get_args(Retriever)
