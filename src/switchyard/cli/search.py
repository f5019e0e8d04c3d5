"""`switchyard search "query" [-k N] [--json]`: which federated tools best match a task."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import anyio
from rich.console import Console
from rich.table import Table

from switchyard.cli.common import add_config_option, configure_logging, load, run_plainly, started_gateway
from switchyard.exposure import ToolFinder

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:  # pyright: ignore[reportPrivateUsage]
    """Add the `search` command."""
    parser = subparsers.add_parser("search", help="find the tools that match a task, across every server")
    add_config_option(parser)
    parser.add_argument("query", help="the task, in plain words")
    parser.add_argument("-k", type=_k, help="how many tools (default: switchyard.retrieval.default_k, 10)")
    parser.add_argument("--server", help="only this server's tools")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--wait", type=float, default=120.0, help="seconds to wait for dense vectors (first run embeds every tool)"
    )
    parser.set_defaults(run=run)


def _k(value: str) -> int:
    """`-k`: an integer from 1 to 50 (the bounds `search_tools` and `retrieval.default_k` have)."""
    try:
        k = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if not 1 <= k <= 50:
        raise argparse.ArgumentTypeError(f"must be from 1 to 50, not {k}")
    return k


def run(args: argparse.Namespace) -> int:
    """Print the best tools; exit 1 when none match."""
    config = load(args)
    configure_logging("warning")

    async def main() -> list[dict[str, Any]]:
        async with started_gateway(config, show_progress=not args.json) as gateway:
            finder = gateway.exposure.finder or ToolFinder(config)
            snapshots = {n: u.snapshot for n, u in gateway.upstreams.items()}
            finder.sync(gateway.catalog, snapshots)
            try:
                await anyio.to_thread.run_sync(finder.index.wait_dense, args.wait)
                k = args.k if args.k is not None else config.switchyard.retrieval.default_k
                names = await finder.search(args.query, k, args.server)
            finally:
                if finder is not gateway.exposure.finder:
                    finder.close()
            out: list[dict[str, Any]] = []
            for rank, name in enumerate(names, 1):
                entry = gateway.catalog.tools[name]
                out.append(
                    {
                        "rank": rank,
                        "name": name,
                        "server": entry.server,
                        "description": entry.definition.get("description", ""),
                    }
                )
            return out

    found = run_plainly(main)
    if args.json:
        json.dump({"query": args.query, "tools": found}, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        table = Table(title=f"tools for: {args.query}")
        for column in ("#", "name", "server", "description"):
            table.add_column(column, overflow="fold")
        for row in found:
            lines = str(row["description"]).strip().splitlines()
            table.add_row(str(row["rank"]), row["name"], row["server"], lines[0][:100] if lines else "")
        Console().print(table)
    return 0 if found else 1
