"""Inference runtimes for the bundled BERT graph: onnxruntime (always installed) and OpenVINO (the extra).

Owns: turning the model folder into something that maps `(input_ids, attention_mask)` to `last_hidden_state`,
thread-safely: building and caching the graph file each runtime wants, the runtime's threading settings, and the
choice between runtimes (`resolve_runtime`).

- `onnxruntime`: the fused fp32 graph (attention, skip-layer-norm, GELU fused by onnxruntime's optimiser), one
  session with one intra-op thread; concurrent callers share it.
- `openvino` (`pip install 'mcp-switchyard[openvino]'`): the plain fp32 graph compiled by OpenVINO's CPU plugin
  twice: for batches with `bulk_threads` streams of one thread each (concurrent batches run side by side), for
  single texts with one stream of `bulk_threads` threads (a query's latency). On a CPU with native
  bf16 arithmetic (AVX512-BF16 or AMX) the plugin computes in bf16 (`precision="auto"`), which halves the
  arithmetic of the matrix products; the result still agrees with the fp32 reference (cosine >= 0.9999, tested).
  The graph is cached as OpenVINO IR (`minilm-<weights hash>-ov-<precision>.xml/.bin`).

Does not own: tokenisation, pooling or batching (`encoder.py`), the graph construction (`onnx_graph.py`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from switchyard.errors import SwitchyardError

__all__ = [
    "GraphRunner",
    "Precision",
    "RuntimeChoice",
    "RuntimeUnavailable",
    "open_runner",
    "openvino_bf16_native",
    "openvino_installed",
    "resolve_runtime",
]

RuntimeChoice = Literal["auto", "onnxruntime", "openvino"]
Precision = Literal["auto", "f32", "bf16"]
OPENVINO_HINT = "pip install 'mcp-switchyard[openvino]'"


class RuntimeUnavailable(SwitchyardError):
    """The requested inference runtime is not installed or cannot run on this machine."""


class GraphRunner(Protocol):
    """Runs the BERT graph; `hidden` may be called from several threads at once."""

    #: what runs the graph, e.g. `onnxruntime-f32` or `openvino-bf16` (logged at load, printed by the benches)
    label: str

    def hidden(self, input_ids: NDArray[np.int64], mask: NDArray[np.int64]) -> NDArray[np.float32]:
        """`last_hidden_state` (batch x sequence x hidden) for right-padded int64 inputs; the caller owns it."""
        ...

    def release(self) -> None:
        """Give back memory held for past batches (called after bulk encoding)."""
        ...


def _weights_key(model_dir: Path) -> str:
    digest = hashlib.sha256()
    with (model_dir / "model.safetensors").open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _cached_graph(path: Path, build: Callable[[], Any]) -> Path:
    """Return `path`, writing `build()` (an onnx ModelProto) there first if absent; atomic for concurrent builders."""
    if path.is_file():
        return path
    import onnx  # noqa: PLC0415  (only needed the first time)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    onnx.save_model(build(), str(tmp))  # pyright: ignore[reportUnknownMemberType]
    tmp.replace(path)
    return path


def openvino_installed() -> bool:
    """Whether the `openvino` package can be imported (without importing it)."""
    return importlib.util.find_spec("openvino") is not None


def openvino_bf16_native() -> bool:
    """Whether OpenVINO is installed and its CPU plugin reports native bf16 arithmetic on this CPU."""
    if not openvino_installed():
        return False
    return "BF16" in _openvino_capabilities()


@lru_cache(maxsize=1)
def _openvino_capabilities() -> frozenset[str]:
    """The CPU plugin's `OPTIMIZATION_CAPABILITIES` (asked once per process: the CPU does not change)."""
    import openvino  # noqa: PLC0415

    core: Any = openvino.Core()
    return frozenset(str(c) for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def resolve_runtime(choice: RuntimeChoice) -> Literal["onnxruntime", "openvino"]:
    """`auto` is OpenVINO where it is installed and the CPU computes bf16 natively, onnxruntime otherwise.

    Raises:
        RuntimeUnavailable: `openvino` was asked for but is not installed (the message gives the pip command).
    """
    if choice == "onnxruntime":
        return "onnxruntime"
    if choice == "openvino":
        if not openvino_installed():
            raise RuntimeUnavailable(f"the encoder runtime 'openvino' is not installed: {OPENVINO_HINT}")
        return "openvino"
    return "openvino" if openvino_bf16_native() else "onnxruntime"


def open_runner(
    runtime: Literal["onnxruntime", "openvino"],
    model_dir: Path,
    cache_dir: Path,
    *,
    threads: int,
    precision: Precision = "auto",
    hidden_size: int = 384,
    heads: int = 12,
) -> GraphRunner:
    """Build (or load from `cache_dir`) the graph for `runtime` and return a runner for it."""
    from switchyard.retrieval.onnx_graph import build_bert_graph, fuse_graph  # noqa: PLC0415

    key = _weights_key(model_dir)
    if runtime == "onnxruntime":
        if precision == "bf16":
            raise RuntimeUnavailable("precision 'bf16' needs the openvino runtime")
        path = _cached_graph(
            cache_dir / f"minilm-{key}.onnx",
            lambda: fuse_graph(build_bert_graph(model_dir), heads=heads, hidden=hidden_size),
        )
        return _OrtRunner(path)

    def ir_for(chosen: str) -> Path:
        return _openvino_ir(cache_dir / f"minilm-{key}-ov-{chosen}.xml", lambda: build_bert_graph(model_dir))

    return _OpenVinoRunner(ir_for, threads=threads, precision=precision)


def _openvino_ir(path: Path, build: Callable[[], Any]) -> Path:
    """Return the OpenVINO IR at `path` (`.xml` + `.bin`), converting `build()` (an onnx ModelProto) first if absent.

    The bf16 variant stores its weights in fp16 (half the file and, loaded, half the memory: the CPU plugin
    repacks them to bf16 anyway); the f32 variant keeps them in fp32.
    """
    if path.is_file() and path.with_suffix(".bin").is_file():
        return path
    import openvino  # noqa: PLC0415

    ov: Any = openvino
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
    onnx_file = _cached_graph(stem.with_suffix(".onnx"), build)
    try:
        model = ov.Core().read_model(str(onnx_file))
        ov.save_model(model, str(stem.with_suffix(".xml")), compress_to_fp16=path.stem.endswith("-bf16"))
    finally:
        onnx_file.unlink(missing_ok=True)
    stem.with_suffix(".bin").replace(path.with_suffix(".bin"))
    stem.with_suffix(".xml").replace(path)  # last: a present .xml means a complete pair
    return path


class _OrtRunner:
    def __init__(self, graph: Path) -> None:
        import onnxruntime  # noqa: PLC0415  # pyright: ignore[reportMissingTypeStubs]

        ort: Any = onnxruntime
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        # No arena: bulk batches would grow it by hundreds of MB that it never gives back.
        options.enable_cpu_mem_arena = False
        self._session: Any = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self.label = "onnxruntime-f32"

    def release(self) -> None:
        """Nothing to drop: onnxruntime runs without a memory arena here."""

    def hidden(self, input_ids: NDArray[np.int64], mask: NDArray[np.int64]) -> NDArray[np.float32]:
        out = self._session.run(["last_hidden_state"], {"input_ids": input_ids, "attention_mask": mask})
        return np.asarray(out[0], dtype=np.float32)


class _CompiledPool:
    """One compiled model (compiled on first use, droppable) and a pool of its infer requests, one per caller."""

    def __init__(self, core: Any, path: str, config: dict[str, str]) -> None:
        self._core = core
        self._path = path
        self._config = config
        self._lock = threading.Lock()
        self._generation = 0  # bumped when the compiled model is dropped: its requests are not reused
        self._busy = 0
        self._idle: list[Any] = []
        self._model: Any = None

    def drop(self) -> None:
        """Forget the compiled model and its requests (with their buffers) unless a call is running."""
        with self._lock:
            self._idle.clear()
            if self._busy == 0:
                self._model = None
                self._generation += 1

    def run(self, input_ids: NDArray[np.int64], mask: NDArray[np.int64]) -> NDArray[np.float32]:
        with self._lock:
            generation = self._generation
            if self._idle:
                request: Any = self._idle.pop()
            else:
                if self._model is None:  # compiling the IR takes ~0.2 s: no compiled-blob cache needed
                    self._model = self._core.compile_model(self._path, "CPU", self._config)
                request = self._model.create_infer_request()
            self._busy += 1
        try:
            request.infer({"input_ids": input_ids, "attention_mask": mask})
            # The request owns its output buffer and is reused: copy before handing it back.
            return np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True)
        finally:
            with self._lock:
                self._busy -= 1
                if generation == self._generation:
                    self._idle.append(request)


class _OpenVinoRunner:
    """Two compilations of the IR: batches run on `threads` single-thread streams side by side; one text at a
    time (a query) runs on one stream of `threads` threads, which halves its latency.

    Each stream keeps activation buffers sized by the largest batch it has run (~130 MB after a bulk build), so
    `release` drops the batch compilation when no call is running; the next batch recompiles it (~0.2 s).
    """

    def __init__(self, graph: Callable[[str], Path], *, threads: int, precision: Precision) -> None:
        import openvino  # noqa: PLC0415

        core: Any = openvino.Core()
        capabilities = _openvino_capabilities()
        if precision == "bf16" and "BF16" not in capabilities:
            raise RuntimeUnavailable("this CPU has no native bf16 arithmetic: use precision 'f32' or 'auto'")
        chosen = "bf16" if precision == "bf16" or (precision == "auto" and "BF16" in capabilities) else "f32"
        path = str(graph(chosen))
        self._batches = _CompiledPool(
            core,
            path,
            {"INFERENCE_PRECISION_HINT": chosen, "NUM_STREAMS": str(threads), "INFERENCE_NUM_THREADS": str(threads)},
        )
        self._single = _CompiledPool(
            core, path, {"INFERENCE_PRECISION_HINT": chosen, "NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": str(threads)}
        )
        # One call here, on one thread: it fails at load rather than on the first search, and it initialises
        # the binding's numpy bridge, whose first use from two threads at once deadlocks (a pybind11
        # call-once that waits for the GIL while the other thread holds it).
        self.hidden(np.array([[101, 102]], dtype=np.int64), np.ones((1, 2), dtype=np.int64))
        self.label = f"openvino-{chosen}"

    def release(self) -> None:
        self._batches.drop()

    def hidden(self, input_ids: NDArray[np.int64], mask: NDArray[np.int64]) -> NDArray[np.float32]:
        pool = self._single if input_ids.shape[0] == 1 else self._batches
        return pool.run(input_ids, mask)
