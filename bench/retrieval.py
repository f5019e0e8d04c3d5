"""Retrieval benchmarks, run from a checkout (never as timed tests).

    python bench/retrieval.py quality --data ../shared/data/retrieval --retriever all [--cache F] [--json]
        the same as `switchyard bench retrieval ...` (metrics, build time, query p50/p95, tool-list tokens)
    python bench/retrieval.py speed --data ../shared/data/retrieval/mcp_haystack [--runtime R] [--precision P] [--json]
        cold build vs the compute floor, warm start from the SQLite cache, index memory, query latency;
        R = auto (default, what the gateway picks), onnxruntime or openvino;
        P = OpenVINO's arithmetic: auto (default: bf16 where the CPU has it natively), f32 or bf16

`speed` runs each phase in a fresh subprocess so "cold" and "warm" mean what they say (a new process, an
empty or a filled cache) and memory is that process's own resident-set growth.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import psutil

from switchyard.cli.bench_retrieval import register
from switchyard.retrieval import MiniLMEncoder, SqliteVectorCache, ToolIndex
from switchyard.retrieval.bench import load_queries, load_tools
from switchyard.retrieval.runtime import Precision, RuntimeChoice, openvino_bf16_native, openvino_installed
from switchyard.retrieval.text import dense_text


def _phase(name: str, data: Path, cache: Path, runtime: str, precision: str) -> dict[str, Any]:
    """Run one phase in a child process; it prints one JSON line."""
    out = subprocess.run(
        [sys.executable, __file__, "_phase", name, str(data), str(cache), runtime, precision],
        check=True,
        capture_output=True,
        text=True,
        # One BLAS thread: the query-side products are small, and a second spinning OpenBLAS thread only
        # competes with onnxruntime (the recommended gateway setting too, see docs/retrieval.md).
        env={**os.environ, "XDG_CACHE_HOME": str(cache / "xdg"), "OPENBLAS_NUM_THREADS": "1"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _child(name: str, data: Path, cache: Path, runtime: RuntimeChoice, precision: Precision) -> None:
    proc = psutil.Process()
    docs = load_tools(data)
    result: dict[str, Any] = {"tools": len(docs)}
    if name == "floor":
        # This phase also builds the runtime's graph file (once per weights, kept in the cache): timed here, so
        # "cold" below is a first start with the graph already built, as every start after the first.
        encoder = MiniLMEncoder(runtime=runtime, precision=precision)
        built = time.perf_counter()
        encoder.load()
        result["graph_build_s"] = time.perf_counter() - built
        result["tokens"] = encoder.count_tokens([dense_text(d) for d in docs])
        a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
        a @ a
        best = min(_timed(lambda: a @ a) for _ in range(5))
        result["numpy_sgemm_gflops"] = 2 * 2048**3 / best / 1e9
        if importlib.util.find_spec("onnxruntime") is not None:
            result["ort_matmul_gflops"] = _ort_matmul_gflops()
        if openvino_installed():
            result["openvino_matmul_gflops_f32"] = _openvino_matmul_gflops("f32")
            if openvino_bf16_native():
                result["openvino_matmul_gflops_bf16"] = _openvino_matmul_gflops("bf16")
        print(json.dumps(result))
        return
    rss0 = proc.memory_info().rss
    cpu0 = time.process_time()
    start = time.perf_counter()
    encoder = MiniLMEncoder(runtime=runtime, precision=precision)
    index = ToolIndex(encoder, cache=SqliteVectorCache(cache / "vectors.sqlite"))
    index.build(docs)
    result["lexical_ready_s"] = time.perf_counter() - start
    index.wait_dense()
    result["dense_ready_s"] = time.perf_counter() - start
    result["dense_ready_cpu_s"] = time.process_time() - cpu0
    result["index_rss_mb"] = (proc.memory_info().rss - rss0) / 2**20
    result["runtime"] = encoder.runtime_label
    if name == "warm":
        queries = [q.query for q in load_queries(data)]
        index.search("warm up")
        lat: list[float] = []
        cpu: list[float] = []
        for q in queries:
            c, t = time.process_time(), time.perf_counter()
            index.search(q, k=10)
            lat.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
        result["p50_ms"] = statistics.median(lat)
        result["p95_ms"] = sorted(lat)[int(0.95 * (len(lat) - 1))]
        result["cpu_p50_ms"] = statistics.median(cpu)
        result["cpu_p95_ms"] = sorted(cpu)[int(0.95 * (len(cpu) - 1))]
    index.close()
    print(json.dumps(result))


def _matmul_model() -> Any:
    """One MatMul at the model's widest shape (4096 tokens x 384 -> 1536), as an ONNX model."""
    from onnx import TensorProto, helper, numpy_helper  # noqa: PLC0415

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((384, 1536), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4096, 384])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4096, 1536])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _ort_matmul_gflops() -> float:
    """Best speed of onnxruntime's fp32 MatMul on 2 threads at the model's widest shape."""
    import onnxruntime as ort  # noqa: PLC0415

    model = _matmul_model()
    rng = np.random.default_rng(1)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    x = rng.standard_normal((4096, 384), dtype=np.float32)
    session.run(None, {"x": x})
    best = min(_timed(lambda: session.run(None, {"x": x})) for _ in range(20))
    return 2 * 4096 * 384 * 1536 / best / 1e9


def _openvino_matmul_gflops(precision: str) -> float:
    """Best speed of OpenVINO's MatMul on 2 threads, same shape, computing in `precision` (f32 or bf16)."""
    import openvino as ov  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="sy-mm-") as tmp:
        path = Path(tmp) / "mm.onnx"
        path.write_bytes(_matmul_model().SerializeToString())
        config = {"INFERENCE_PRECISION_HINT": precision, "NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": "2"}
        compiled = ov.Core().compile_model(str(path), "CPU", config)
    request = compiled.create_infer_request()
    x = np.random.default_rng(1).standard_normal((4096, 384), dtype=np.float32)
    request.infer({"x": x})
    best = min(_timed(lambda: request.infer({"x": x})) for _ in range(20))
    return 2 * 4096 * 384 * 1536 / best / 1e9


def _timed(fn: object) -> float:
    t = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t


def _speed(data: Path, runtime: str, precision: str, as_json: bool) -> None:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="sy-speed-") as tmp:
        cache = Path(tmp)
        floor = _phase("floor", data, cache, runtime, precision)
        cold = _phase("cold", data, cache, runtime, precision)
        warm = _phase("warm", data, cache, runtime, precision)
    flops = floor["tokens"] * 21.2e6
    # The floor is full precision: the best fp32 matrix speed any installed runtime reached in this run.
    fp32_peaks = {k: floor[k] for k in ("ort_matmul_gflops", "openvino_matmul_gflops_f32") if k in floor}
    fp32_floor = flops / (max(fp32_peaks.values()) * 1e9)
    report: dict[str, Any] = {
        "runtime": cold["runtime"],
        "tools": cold["tools"],
        "doc_tokens": floor["tokens"],
        "numpy_sgemm_gflops": floor["numpy_sgemm_gflops"],
        **fp32_peaks,
        **(
            {"openvino_matmul_gflops_bf16": floor["openvino_matmul_gflops_bf16"]}
            if "openvino_matmul_gflops_bf16" in floor
            else {}
        ),
        "graph_build_s_first_start_only": floor["graph_build_s"],
        "floor_s_at_best_fp32_peak": fp32_floor,
        "floor_s_at_notes_peak_156": flops / 156e9,
        **(
            {"floor_s_at_openvino_bf16_peak": flops / (floor["openvino_matmul_gflops_bf16"] * 1e9)}
            if "openvino_matmul_gflops_bf16" in floor
            else {}
        ),
        "cold_over_fp32_floor": cold["dense_ready_s"] / fp32_floor,
        "cold_lexical_ready_s": cold["lexical_ready_s"],
        "cold_dense_ready_s": cold["dense_ready_s"],
        "cold_over_floor_156": cold["dense_ready_s"] / (flops / 156e9),
        "cold_cpu_s_per_core": cold["dense_ready_cpu_s"] / 2,
        "cold_cpu_per_core_over_floor_156": cold["dense_ready_cpu_s"] / 2 / (flops / 156e9),
        "cold_index_rss_mb": cold["index_rss_mb"],
        "warm_dense_ready_s": warm["dense_ready_s"],
        "warm_dense_ready_cpu_s": warm["dense_ready_cpu_s"],
        "warm_index_rss_mb": warm["index_rss_mb"],
        "query_p50_ms": warm["p50_ms"],
        "query_p95_ms": warm["p95_ms"],
        "query_cpu_p50_ms": warm["cpu_p50_ms"],
        "query_cpu_p95_ms": warm["cpu_p95_ms"],
    }
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{'load average (1 min) at start':36} {load_before:10.2f}")
        print(f"{'load average (1 min) at end':36} {os.getloadavg()[0]:10.2f}")
        for key, value in report.items():
            shown = f"{value:10.2f}" if isinstance(value, float | int) else f"{value:>10}"
            print(f"{key:36} {shown}")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_phase":
        runtime, precision = cast(RuntimeChoice, sys.argv[5]), cast(Precision, sys.argv[6])
        _child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), runtime, precision)
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "quality":
        quality = argparse.ArgumentParser(prog="bench/retrieval.py quality")
        register(quality.add_subparsers(dest="cmd", required=True))
        args = quality.parse_args(["retrieval", *sys.argv[2:]])
        return int(args.func(args))
    parser = argparse.ArgumentParser(
        prog="bench/retrieval.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["quality", "speed"])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--runtime", choices=["auto", "onnxruntime", "openvino"], default="auto")
    parser.add_argument("--precision", choices=["auto", "f32", "bf16"], default="auto")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    _speed(args.data, args.runtime, args.precision, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
