"""The `switchyard` command: argument parsing and the top-level error report.

Owns the command tree and the exit codes (0 ok, 1 the command found a problem, 2 usage or configuration
error). Each command lives in its own module with a `register(subparsers)` function.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from switchyard import __version__
from switchyard.cli.common import stderr
from switchyard.errors import ConfigError, GatewayError, SwitchyardError

__all__ = ["build_parser", "main"]

_COMMANDS = ("serve", "inspect", "call", "search", "scan", "pins", "keys", "audit", "approvals")
_BENCHMARKS = ("bench_retrieval", "bench_scan")


def build_parser() -> argparse.ArgumentParser:
    """The full command tree."""
    parser = argparse.ArgumentParser(
        prog="switchyard",
        description="One MCP endpoint in front of any number of MCP servers.",
    )
    parser.add_argument("--version", action="version", version=f"switchyard {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"switchyard.cli.{name}").register(sub)
    bench = sub.add_parser("bench", help="benchmarks: retrieval quality, scanner quality")
    bench_sub = bench.add_subparsers(title="benchmarks", metavar="BENCHMARK")
    for name in _BENCHMARKS:
        try:
            module = importlib.import_module(f"switchyard.cli.{name}")
        except ImportError:
            continue
        module.register(bench_sub)
    return parser


def _report(message: str) -> None:
    # soft_wrap: the terminal wraps long lines; rich must not break a path or an id with a newline of its own.
    stderr.print("error:", style="bold red", end=" ")
    stderr.print(message, markup=False, highlight=False, soft_wrap=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    # Query vectors are scored one query at a time: a second OpenBLAS thread only adds contention (measured:
    # 3x the CPU per query under load; docs/retrieval.md). Set before numpy loads; an explicit value wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    run = getattr(args, "run", None) or getattr(args, "func", None)
    if run is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(run(args))
    except ConfigError as exc:
        _report(str(exc))
        return 2
    except GatewayError as exc:
        _report(exc.message)
        return 2
    except SwitchyardError as exc:
        _report(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
