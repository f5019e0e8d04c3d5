"""Test doubles for retrieval tests: a tiny deterministic encoder that counts (and can hold back) its work."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from switchyard.retrieval import ToolDoc
from switchyard.retrieval.text import analyse


class CountingEncoder:
    """Bag-of-stemmed-words hashed into 64 dimensions; records every text it embeds.

    If `gate` is given, `encode` of more than one text waits for it (single texts are queries and pass).
    """

    name = "counting-bow"
    dim = 64

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.encoded: list[str] = []
        self.gate = gate

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if self.gate is not None and len(texts) > 1:
            assert self.gate.wait(10), "test gate never opened"
        self.encoded.extend(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for term in analyse(text):
                out[row, int(hashlib.md5(term.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return (out / norms).astype(np.float32)


def tool(server: str, name: str, description: str, **params: str) -> ToolDoc:
    """A `ToolDoc` keyed `server/name` with string parameters described by `params`."""
    schema = {"type": "object", "properties": {p: {"type": "string", "description": d} for p, d in params.items()}}
    return ToolDoc(key=f"{server}/{name}", server=server, name=name, description=description, input_schema=schema)


def small_catalog() -> list[ToolDoc]:
    """Nine tools on four servers, written for these tests."""
    return [
        tool("weather", "get_forecast", "Get the weather forecast for a city for the next days.", city="City name"),
        tool("weather", "get_alerts", "List active severe weather alerts for a region.", region="Region code"),
        tool("mail", "send_email", "Send an email message to recipients.", to="Recipient address", body="Text"),
        tool("mail", "searchInbox", "Search the inbox for messages matching a query.", query="Search words"),
        tool("files", "read_file", "Read the complete contents of a file from disk.", path="File path"),
        tool("files", "write-file", "Write text content to a file, replacing it.", path="File path", content="Text"),
        tool("charts", "generate_bar_chart", "Draw a bar chart image from a data table.", data="Rows of values"),
        tool("charts", "generate_word_cloud", "Make a word cloud picture from text.", text="Source text"),
        tool("charts", "generate_line_chart", "Plot a line chart of a time series.", data="Points"),
    ]
