"""`switchyard check` and `switchyard tools`: what the configured servers offer, and what is wrong.

Owns the two read-only inspection commands. Does not serve anything.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import anyio
from rich.console import Console
from rich.table import Table

from switchyard.cli.common import add_config_option, configure_logging, load, started_gateway, status_table
from switchyard.gateway import Gateway
from switchyard.upstream.base import UpstreamState

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:  # pyright: ignore[reportPrivateUsage]
    """Add the `check` and `tools` commands."""
    check = subparsers.add_parser("check", help="validate the config, start each server, print a status table")
    add_config_option(check)
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")
    check.set_defaults(run=run_check)
    tools = subparsers.add_parser("tools", help="print the federated tool catalog")
    add_config_option(tools)
    tools.add_argument("--json", action="store_true", help="print the tools/list result as JSON")
    tools.set_defaults(run=run_tools)


def _check_report(gateway: Gateway) -> dict[str, Any]:
    servers: list[dict[str, Any]] = []
    for name, upstream in gateway.upstreams.items():
        snap = upstream.snapshot if upstream.state is UpstreamState.UP else None
        servers.append(
            {
                "server": name,
                "status": upstream.state.value,
                "era": snap.era if snap else None,
                "tools": len(snap.tools) if snap else None,
                "prompts": len(snap.prompts) if snap else None,
                "resources": len(snap.resources) + len(snap.templates) if snap else None,
                "error": upstream.last_error,
            }
        )
    quarantined = [
        {"name": name, "server": h.server, "tool": h.tool, "kind": h.kind, "reason": h.reason}
        for name, h in gateway.catalog.quarantined.items()
    ]
    return {"servers": servers, "collisions": [str(c) for c in gateway.catalog.collisions], "quarantined": quarantined}


def run_check(args: argparse.Namespace) -> int:
    """Exit 0 when every enabled server is up, 1 otherwise."""
    config = load(args)
    configure_logging("error")

    async def main() -> dict[str, Any]:
        async with started_gateway(config, show_progress=not args.json) as gateway:
            report = _check_report(gateway)
            if not args.json:
                console = Console()
                console.print(status_table(gateway))
                for collision in gateway.catalog.collisions:
                    console.print(f"[yellow]collision[/]: {collision}", highlight=False)
                for q in report["quarantined"]:
                    console.print(f"[red]quarantined[/] {q['name']}: ", end="")
                    console.print(q["reason"], markup=False, highlight=False)
                disabled = [n for n, c in config.servers.items() if not c.active]
                if disabled:
                    console.print(f"disabled: {', '.join(disabled)}")
            return report

    report = anyio.run(main)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 0 if all(s["status"] == "up" for s in report["servers"]) else 1


def run_tools(args: argparse.Namespace) -> int:
    """Print every federated tool."""
    config = load(args)
    configure_logging("error")

    async def main() -> list[dict[str, Any]]:
        async with started_gateway(config, show_progress=not args.json) as gateway:
            return [
                {"server": e.server, "upstreamName": e.original, **e.public()} for e in gateway.catalog.tools.values()
            ]

    tools = anyio.run(main)
    if args.json:
        json.dump({"tools": tools}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    table = Table(title=f"{len(tools)} tools")
    for column in ("name", "server", "description"):
        table.add_column(column, overflow="fold")
    for tool in tools:
        description = str(tool.get("description") or "").strip().splitlines()
        table.add_row(tool["name"], tool["server"], description[0][:100] if description else "")
    Console().print(table)
    return 0
