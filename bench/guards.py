"""Runtime guard benchmark (issue 6), run from a checkout (never as a timed test).

    python bench/guards.py [--data ../shared/data/security/tool_outputs.jsonl] [--calls 400] [--json]

One run measures, on this machine, in one process:

1. **Detection through the guard**: every row of the outputs corpus wrapped as a tool result
   (`{"content": [{"type": "text", "text": row}]}`) and passed to `OutputGuard.apply` with the default
   settings (annotate injections, redact secrets). Flagged = the guard annotated it. Reported: recall on the
   injection rows, false-positive rate on the benign rows (targets: recall >= 0.85 with FPR <= 3%).
2. **Throughput per core**: CPU time of `OutputGuard.apply` over the whole corpus (best of 3), in MB/s of
   result text (UTF-8) (target >= 5 MB/s).
3. **Added latency on a 10 KB result**: an in-process gateway (the harness: `MCPServer` upstream, SDK client
   on the front, 2026-07-28) whose tool returns a 10,240-character benign result (benign rows concatenated),
   called `--calls` times with the chain `()` and with `(OutputGuardStage,)`, interleaved in rounds of 20;
   reported: p50 per call of each and the difference (target <= 1 ms), in wall time and in CPU time of the
   process (client, gateway and server share it, so a call's CPU time is all the work it caused; on a loaded
   machine wall time also counts waiting for a core). Also the guard's own CPU time on that result (p50 of
   `OutputGuard.apply`), which is what the difference should be made of.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.server.mcpserver import MCPServer

from switchyard.config import GuardSettings
from switchyard.pipeline.chain import Stage
from switchyard.server.mcp import FrontServer
from switchyard.stages.guards import OutputGuard, OutputGuardStage
from switchyard.testing.harness import memory_gateway

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "security" / "tool_outputs.jsonl"
TARGET_RECALL, TARGET_FPR, TARGET_MBPS, TARGET_ADDED_MS = 0.85, 0.03, 5.0, 1.0


def load(path: Path) -> list[tuple[str, bool]]:
    """(text, is_injection) rows."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(str(r["text"]), r["label"] == "injection") for r in rows]


def detection(guard: OutputGuard, rows: Sequence[tuple[str, bool]]) -> dict[str, float]:
    """Recall and FPR of the guard's annotate decision."""
    tp = fp = tn = fn = 0
    for text, positive in rows:
        _, outcome = guard.apply({"content": [{"type": "text", "text": text}]}, "tools/call", "bench", "tool")
        flagged = outcome is not None and bool(outcome.injection)
        tp, fp = tp + (positive and flagged), fp + (not positive and flagged)
        tn, fn = tn + (not positive and not flagged), fn + (positive and not flagged)
    return {"recall": tp / max(1, tp + fn), "fpr": fp / max(1, fp + tn), "tp": tp, "fp": fp, "tn": tn, "fn": fn}


def throughput(guard: OutputGuard, rows: Sequence[tuple[str, bool]]) -> float:
    """MB/s of result text through `OutputGuard.apply`, CPU time, best of 3."""
    results = [{"content": [{"type": "text", "text": text}]} for text, _ in rows]
    size = sum(len(text.encode()) for text, _ in rows)
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for result in results:
            guard.apply(result, "tools/call", "bench", "tool")
        best = min(best, time.process_time() - start)
    return size / best / 1e6


def ten_kb(rows: Sequence[tuple[str, bool]]) -> str:
    """A 10,240-character benign result: benign rows concatenated."""
    return "\n".join(text for text, positive in rows if not positive)[:10240]


def guard_cpu_ms(guard: OutputGuard, text: str, samples: int = 300) -> float:
    """p50 CPU milliseconds of `OutputGuard.apply` on one result."""
    result = {"content": [{"type": "text", "text": text}]}
    times: list[float] = []
    for _ in range(samples):
        start = time.process_time()
        guard.apply(result, "tools/call", "bench", "tool")
        times.append(time.process_time() - start)
    return statistics.median(times) * 1000.0


async def call_latency(text: str, calls: int) -> dict[str, float]:
    """p50 wall ms per call through the in-process gateway without and with the output guard."""
    server = MCPServer("big")

    @server.tool()
    def big() -> str:
        """A 10 KB result."""
        return text

    chains: dict[str, tuple[Stage, ...]] = {"none": (), "guard": (OutputGuardStage(GuardSettings()),)}
    times: dict[str, list[float]] = {name: [] for name in chains}
    cpu: dict[str, list[float]] = {name: [] for name in chains}
    async with (
        memory_gateway({"big": server}, stages=chains["none"]) as plain,
        memory_gateway({"big": server}, stages=chains["guard"]) as guarded,
    ):
        clients = {"none": FrontServer(plain).server, "guard": FrontServer(guarded).server}
        async with Client(clients["none"]) as c_none, Client(clients["guard"]) as c_guard:  # pyright: ignore[reportArgumentType]
            by_name = {"none": c_none, "guard": c_guard}
            for client in by_name.values():
                for _ in range(20):  # warm-up
                    await client.call_tool("big__big", {})
            for _ in range(max(1, calls // 20)):
                for name, client in by_name.items():
                    for _ in range(20):
                        start, start_cpu = time.perf_counter(), time.process_time()
                        await client.call_tool("big__big", {})
                        times[name].append(time.perf_counter() - start)
                        cpu[name].append(time.process_time() - start_cpu)
    p50 = {name: statistics.median(t) * 1000.0 for name, t in times.items()}
    p50_cpu = {name: statistics.median(t) * 1000.0 for name, t in cpu.items()}
    return {
        "none_p50_ms": p50["none"],
        "guard_p50_ms": p50["guard"],
        "added_p50_ms": p50["guard"] - p50["none"],
        "none_cpu_p50_ms": p50_cpu["none"],
        "guard_cpu_p50_ms": p50_cpu["guard"],
        "added_cpu_p50_ms": p50_cpu["guard"] - p50_cpu["none"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = load(args.data)
    guard = OutputGuard(GuardSettings())
    quality = detection(guard, rows)
    mbps = throughput(guard, rows)
    text = ten_kb(rows)
    cpu = guard_cpu_ms(guard, text)
    latency = anyio.run(call_latency, text, args.calls)
    out: dict[str, Any] = {
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        **quality,
        "mb_per_s": mbps,
        "guard_cpu_p50_ms_10kb": cpu,
        **latency,
    }
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"data: {args.data} ({len(rows)} rows); {out['machine']}; one thread\n")
    print("| measure | value | target |\n|---|---:|---:|")
    print(f"| injection recall (annotated) | {quality['recall']:.3f} | >= {TARGET_RECALL} |")
    print(f"| false-positive rate | {quality['fpr']:.3f} | <= {TARGET_FPR} |")
    print(f"| TP / FP / TN / FN | {quality['tp']} / {quality['fp']} / {quality['tn']} / {quality['fn']} | |")
    print(f"| throughput (CPU, best of 3) | {mbps:.2f} MB/s | >= {TARGET_MBPS} MB/s |")
    print(f"| guard CPU on a 10 KB result, p50 | {cpu:.2f} ms | |")
    for kind, label in (("", "wall"), ("cpu_", "CPU")):
        none, with_guard = latency[f"none_{kind}p50_ms"], latency[f"guard_{kind}p50_ms"]
        print(f"| call p50 without / with guard, 10 KB result ({label}) | {none:.2f} / {with_guard:.2f} ms | |")
        print(f"| added p50 ({label}) | {latency[f'added_{kind}p50_ms']:.2f} ms | <= {TARGET_ADDED_MS} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
