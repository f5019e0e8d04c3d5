"""The tool finder re-embeds only what changed: nothing on a restart, one text when one tool changes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from switchyard.catalog.catalog import build_catalog
from switchyard.config import parse_config
from switchyard.exposure import ToolFinder
from switchyard.retrieval import MiniLMEncoder, SqliteVectorCache
from switchyard.upstream.base import UpstreamSnapshot


class CountingEncoder:
    """The real MiniLM encoder, counting the texts it is asked to embed."""

    def __init__(self, inner: MiniLMEncoder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.texts: list[str] = []

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        self.texts.extend(texts)
        return self.inner.encode(texts)


def snapshot(description: str) -> UpstreamSnapshot:
    tools = (
        {"name": "forecast", "description": description, "inputSchema": {"type": "object"}},
        {"name": "alerts", "description": "Severe weather alerts for a state.", "inputSchema": {"type": "object"}},
    )
    return UpstreamSnapshot(era="2026-07-28", tools=tools)


def test_restarts_reembed_nothing_and_changes_reembed_only_the_changed_tool(tmp_path: Path) -> None:
    config = parse_config({"mcpServers": {"weather": {"command": "x"}}, "switchyard": {"exposure": "search"}}, env={})
    store = tmp_path / "vectors.db"
    encoder = MiniLMEncoder()

    def run(description: str) -> list[str]:
        counting = CountingEncoder(encoder)
        finder = ToolFinder(config, encoder=counting, cache=SqliteVectorCache(store))
        snaps = {"weather": snapshot(description)}
        finder.sync(build_catalog(snaps, config), snaps)
        assert finder.index.wait_dense(120)
        hits = finder.index.search("weather forecast for a city", 1)
        finder.close()
        assert hits[0].key == "weather__forecast"
        return counting.texts

    first = run("Weather forecast for a city.")
    again = run("Weather forecast for a city.")
    changed = run("Weather forecast for a city, for the next seven days.")
    assert len([t for t in first if t]) >= 2  # both tools embedded (queries may add more)
    assert not [t for t in again if "Severe weather alerts" in t or "Weather forecast for a city." in t]
    assert [t for t in changed if "seven days" in t]
    assert not [t for t in changed if "Severe weather alerts" in t]
