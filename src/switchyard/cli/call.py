"""`switchyard call <tool> '<json arguments>'`: one tool call through the gateway, result printed as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from switchyard.cli.common import add_config_option, configure_logging, load, run_plainly, started_gateway
from switchyard.errors import InvalidRequest

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:  # pyright: ignore[reportPrivateUsage]
    """Add the `call` command."""
    parser = subparsers.add_parser("call", help="call one tool through the gateway and print the result")
    add_config_option(parser)
    parser.add_argument("tool", help="federated tool name, as `switchyard tools` shows it")
    parser.add_argument("arguments", nargs="?", default="{}", help="JSON object of arguments (default {})")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 on success, 1 if the tool reported an error."""
    try:
        arguments = json.loads(args.arguments)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"arguments are not valid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(arguments, dict):
        raise InvalidRequest("arguments must be a JSON object")
    config = load(args)
    configure_logging("error")

    async def main() -> dict[str, Any]:
        async with started_gateway(config) as gateway:
            ctx = gateway.context("tools/call", {"name": args.tool, "arguments": arguments})
            return await gateway.handle(ctx)

    result = run_plainly(main)
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 1 if result.get("isError") else 0
