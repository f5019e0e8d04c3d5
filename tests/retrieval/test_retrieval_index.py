"""ToolIndex behaviour on a small hand-written catalog: ranking, filters, updates, background dense build."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from retrieval_fakes import CountingEncoder, small_catalog, tool

from switchyard.retrieval import FusionConfig, SqliteVectorCache, ToolIndex
from switchyard.retrieval.text import analyse


@pytest.mark.parametrize("retriever", ["bm25", "dense", "hybrid"])
def test_each_retriever_puts_the_obvious_tool_first(retriever: str) -> None:
    encoder = None if retriever == "bm25" else CountingEncoder()
    index = ToolIndex(encoder, retriever=retriever, background=False)  # type: ignore[arg-type]
    index.build(small_catalog())
    assert index.search("send an email to my boss", k=3)[0].key == "mail/send_email"
    assert index.search("weather forecast for Lisbon", k=1)[0].key == "weather/get_forecast"


def test_hits_carry_server_and_descending_scores() -> None:
    index = ToolIndex(retriever="bm25")
    index.build(small_catalog())
    hits = index.search("chart", k=5)
    assert [h.server for h in hits[:3]] == ["charts"] * 3
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_words_alone_return_only_tools_that_share_a_word_with_the_query() -> None:
    index = ToolIndex(retriever="bm25")
    index.build(small_catalog())
    # "chart" is in the names and descriptions of the charts server's three tools (and in no other tool's).
    assert {h.key for h in index.search("chart", k=100)} == {
        "charts/generate_bar_chart",
        "charts/generate_word_cloud",
        "charts/generate_line_chart",
    }
    assert index.search("xylophone quasar", k=5) == []
    # The server's text counts as evidence for its tools: "weather" names the server and both its tools.
    assert {h.server for h in index.search("weather", k=100)} == {"weather"}


def test_dense_similarity_ranks_every_tool() -> None:
    index = ToolIndex(CountingEncoder(), background=False)
    index.build(small_catalog())
    assert len(index.search("chart", k=100)) == len(small_catalog())


def test_server_filter_only_returns_that_servers_tools() -> None:
    index = ToolIndex(retriever="bm25")
    index.build(small_catalog())
    hits = index.search("write text to a file", k=5, server="mail")
    assert {h.server for h in hits} == {"mail"}
    assert index.search("anything", server="no-such-server") == []


def test_multi_intent_query_gets_a_tool_for_each_part_in_the_top_k() -> None:
    index = ToolIndex(CountingEncoder(), background=False)
    index.build(small_catalog())
    keys = [h.key for h in index.search("read the notes file, make a word cloud and then email it to Ann", k=4)]
    assert {"files/read_file", "charts/generate_word_cloud", "mail/send_email"} <= set(keys)


def test_a_waiter_wakes_when_a_catalog_change_is_ready_at_once_from_memory() -> None:
    """A catalog goes back to one whose vectors are in memory while a bigger one is still being embedded:
    dense search is ready at once, and `wait_dense` says so at once (it slept through its timeout before)."""
    gate = threading.Event()
    gate.set()
    index = ToolIndex(CountingEncoder(gate))
    catalog = small_catalog()
    index.build(catalog)
    try:
        assert index.wait_dense(10)
        gate.clear()  # the next build's embedding blocks
        index.build([*catalog, *(tool("extra", f"t{i}", f"Extra tool number {i}.") for i in range(40))])
        assert not index.dense_ready
        waited: list[float] = []

        def wait() -> None:
            began = time.monotonic()
            index.wait_dense(8)
            waited.append(time.monotonic() - began)

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.2)  # the waiter is waiting
        index.build(catalog)  # every vector in memory: ready at once
        waiter.join(10)
        assert index.dense_ready
        assert len(waited) == 1
        assert waited[0] < 4.0, waited
    finally:
        gate.set()
        index.close()


def test_lexical_answers_at_once_and_dense_joins_when_ready() -> None:
    gate = threading.Event()
    encoder = CountingEncoder(gate)
    index = ToolIndex(encoder)  # hybrid, background build
    index.build(small_catalog())
    try:
        assert not index.dense_ready
        assert index.search("send an email", k=1)[0].key == "mail/send_email"  # lexical only, no waiting
        gate.set()
        assert index.wait_dense(10)
        assert index.dense_ready
        assert index.search("send an email", k=1)[0].key == "mail/send_email"
    finally:
        gate.set()
        index.close()


def test_update_adds_replaces_and_removes_tools_and_reembeds_only_changes() -> None:
    encoder = CountingEncoder()
    index = ToolIndex(encoder, background=False)
    index.build(small_catalog())
    assert len(encoder.encoded) == len(small_catalog())
    encoder.encoded.clear()
    changed = tool("weather", "get_forecast", "Hourly weather forecast with rain probability.", city="City")
    added = tool("maps", "geocode", "Turn a street address into coordinates.", address="Street address")
    index.update([changed, added], removed=["mail/searchInbox"])
    assert index.dense_ready
    assert len(encoder.encoded) == 2  # only the changed and the new tool text
    keys = {d.key for d in index.docs}
    assert "mail/searchInbox" not in keys
    assert "maps/geocode" in keys
    assert index.search("coordinates of an address", k=1)[0].key == "maps/geocode"


def test_restart_with_sqlite_cache_embeds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    first = CountingEncoder()
    cache = SqliteVectorCache(path)
    ToolIndex(first, cache=cache, background=False).build(small_catalog())
    cache.close()
    assert len(first.encoded) == len(small_catalog())

    second = CountingEncoder()
    reopened = SqliteVectorCache(path)
    index = ToolIndex(second, cache=reopened, background=False)
    index.build(small_catalog())
    assert index.dense_ready
    assert second.encoded == []
    reopened.close()


def test_dense_failure_keeps_lexical_search_working() -> None:
    class BrokenEncoder(CountingEncoder):
        def encode(self, texts):  # type: ignore[no-untyped-def]
            if len(texts) > 1:
                raise RuntimeError("model exploded")
            return super().encode(texts)

    index = ToolIndex(BrokenEncoder(), background=False)
    index.build(small_catalog())
    assert not index.dense_ready
    assert isinstance(index.dense_error, RuntimeError)
    assert index.search("send an email", k=1)[0].key == "mail/send_email"


@pytest.mark.parametrize("retriever", ["hybrid", "dense"])
def test_a_query_encoder_that_fails_after_the_vectors_are_ready_falls_back_to_words(retriever: str) -> None:
    # The tool vectors were built (or came from the cache); then the embeddings endpoint goes down.
    class Failing(CountingEncoder):
        down = False

        def encode(self, texts):  # type: ignore[no-untyped-def]
            if self.down:
                raise RuntimeError("embeddings endpoint unreachable")
            return super().encode(texts)

    encoder = Failing()
    index = ToolIndex(encoder, retriever=retriever, background=False)  # type: ignore[arg-type]
    index.build(small_catalog())
    assert index.dense_ready
    encoder.down = True
    hits = index.search("send an email", k=3)
    assert hits[0].key == "mail/send_email"
    encoder.down = False  # back: hybrid (or dense) results again
    assert index.search("send an email", k=1)[0].key == "mail/send_email"


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="needs an encoder"):
        ToolIndex(retriever="dense")
    with pytest.raises(ValueError, match="retriever must be"):
        ToolIndex(retriever="magic")  # type: ignore[arg-type]


def test_rrf_fusion_also_ranks_the_obvious_tool_first() -> None:
    index = ToolIndex(CountingEncoder(), config=FusionConfig(method="rrf"), background=False)
    index.build(small_catalog())
    assert index.search("plot a line chart of prices over time", k=1)[0].key == "charts/generate_line_chart"


def test_empty_query_empty_index_and_zero_k_are_harmless() -> None:
    index = ToolIndex(CountingEncoder(), background=False)
    assert index.search("send an email") == []
    index.build(small_catalog())
    assert index.search("send an email", k=0) == []
    assert len(index.search("", k=3)) == 3


def test_a_bulk_build_hands_back_the_encoders_batch_memory_once_and_small_updates_do_not() -> None:
    class ReleasingEncoder(CountingEncoder):
        def __init__(self) -> None:
            super().__init__()
            self.releases = 0

        def release(self) -> None:
            self.releases += 1

    encoder = ReleasingEncoder()
    index = ToolIndex(encoder, background=False)
    many = [tool("bulk", f"tool_{i}", f"does thing number {i}") for i in range(600)]
    index.build(many)
    assert index.dense_ready
    assert encoder.releases == 1  # after the whole job, not after each 256-text chunk
    index.build([*many, tool("bulk", "one_more", "a new tool")])
    assert encoder.releases == 1  # one new text: nothing big was held


def test_name_coverage_is_the_share_of_a_names_words_in_the_query() -> None:
    catalog = [
        tool("vault", "secret_get", "Show one secret."),
        tool("vault", "secret_list", "Enumerate the secrets."),
        tool("vault", "listVaultKeysNow", "Enumerate the keys."),
    ]
    index = ToolIndex(retriever="bm25")
    index.build(catalog)
    lexical = index._snap.lexical  # pyright: ignore[reportPrivateUsage]
    assert lexical is not None
    coverage = lexical.name_coverage(analyse("list all secrets, list them"))
    # {secret, get}, {secret, list}, {list, vault, key} ("now" is a stopword, as in queries)
    assert coverage.tolist() == pytest.approx([1 / 2, 2 / 2, 1 / 3])


@pytest.mark.parametrize("retriever", ["bm25", "hybrid"])
def test_name_coverage_adds_its_share_of_the_best_score(retriever: str) -> None:
    encoder = None if retriever == "bm25" else CountingEncoder()
    without = ToolIndex(encoder, retriever=retriever, config=FusionConfig(name_coverage_weight=0.0), background=False)  # type: ignore[arg-type]
    with_it = ToolIndex(encoder, retriever=retriever, config=FusionConfig(name_coverage_weight=0.5), background=False)  # type: ignore[arg-type]
    without.build(small_catalog())
    with_it.build(small_catalog())
    query = "send email alerts"
    base = without.scores(query)
    lexical = with_it._snap.lexical  # pyright: ignore[reportPrivateUsage]
    assert lexical is not None
    coverage = lexical.name_coverage(analyse(query))
    assert coverage.max() > 0
    assert with_it.scores(query) == pytest.approx(base + 0.5 * float(base.max()) * coverage, rel=1e-5)


def test_dense_retriever_has_no_name_bonus() -> None:
    a = ToolIndex(CountingEncoder(), retriever="dense", config=FusionConfig(name_coverage_weight=0.0), background=False)
    b = ToolIndex(CountingEncoder(), retriever="dense", config=FusionConfig(name_coverage_weight=0.5), background=False)
    a.build(small_catalog())
    b.build(small_catalog())
    assert b.scores("send email alerts").tolist() == a.scores("send email alerts").tolist()


def test_cached_vectors_of_another_size_are_embedded_again(tmp_path: Path) -> None:
    cache = SqliteVectorCache(tmp_path / "vectors.db")
    small = ToolIndex(CountingEncoder(), cache=cache, background=False)
    small.build(small_catalog())
    small.close()

    class Wider(CountingEncoder):
        dim = 96  # same name, another size: as when an endpoint's `dim` changes

    wider = Wider()
    index = ToolIndex(wider, cache=cache, background=False)
    index.build(small_catalog())
    assert index.dense_ready
    assert len(wider.encoded) >= len(small_catalog())  # nothing of the 64-wide rows was used
    assert index.search("send an email", k=1)[0].key == "mail/send_email"
    index.close()
