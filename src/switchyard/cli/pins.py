"""`switchyard approve`: review quarantined tools (a readable diff of what changed) and approve them.

Owns the approval conversation. The running gateway notices approvals within a second (it watches the store).
"""

from __future__ import annotations

import argparse
import sys

import anyio
from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax

from switchyard.catalog.pins import Hold, definition_diff
from switchyard.cli.common import add_config_option, configure_logging, load, started_gateway
from switchyard.errors import InvalidRequest

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:  # pyright: ignore[reportPrivateUsage]
    """Add the `approve` command."""
    parser = subparsers.add_parser("approve", help="review quarantined tools and approve their current definitions")
    add_config_option(parser)
    parser.add_argument("--server", help="only this server's tools")
    parser.add_argument("tools", nargs="*", help="upstream tool names (default: every quarantined tool)")
    parser.add_argument("--yes", action="store_true", help="approve without asking")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when something was approved or nothing was held, 1 when the user declined."""
    config = load(args)
    configure_logging("error")
    console = Console()

    async def holds() -> tuple[list[Hold], object]:
        async with started_gateway(config) as gateway:
            found = [h for h in gateway.catalog.quarantined.values() if isinstance(h, Hold)]
            return found, gateway.pinning

    found, pinning = anyio.run(holds)
    selected = [
        h
        for h in found
        if (args.server is None or h.server == args.server) and (not args.tools or h.tool in args.tools)
    ]
    if not selected:
        console.print("nothing is quarantined" + (" for that selection" if found else ""))
        return 0
    for hold in selected:
        console.rule(escape(f"{hold.server} / {hold.tool}  ({hold.kind})"))  # names are the upstream's text
        console.print(hold.reason, markup=False)
        console.print(Syntax(definition_diff(hold.approved, hold.definition), "diff", word_wrap=True))
    if not args.yes:
        if not sys.stdin.isatty():
            raise InvalidRequest("not approving without confirmation: run in a terminal or pass --yes")
        answer = console.input(f"approve {len(selected)} definition(s)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            console.print("nothing approved")
            return 1
    pinning.approve(selected)  # type: ignore[attr-defined]
    console.print(f"approved {len(selected)} definition(s)")
    return 0
