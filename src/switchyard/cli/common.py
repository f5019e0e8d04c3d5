"""Shared CLI plumbing: the config option, logging set-up, error printing, and the start-up progress display.

Owns: how every command finds and loads its configuration and reports a `SwitchyardError` to a person.
Does not own any command.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from switchyard.config import GatewayConfig, load_config
from switchyard.errors import SwitchyardError
from switchyard.gateway import Gateway
from switchyard.upstream.base import UpstreamState

__all__ = ["add_config_option", "configure_logging", "load", "run_plainly", "started_gateway", "stderr"]

stderr = Console(stderr=True)
DEFAULT_CONFIG = "servers.json"


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """Add `-c/--config`, defaulting to $SWITCHYARD_CONFIG or ./servers.json."""
    parser.add_argument(
        "-c",
        "--config",
        default=os.environ.get("SWITCHYARD_CONFIG", DEFAULT_CONFIG),
        help="configuration file (Claude-style mcpServers JSON); default $SWITCHYARD_CONFIG or ./servers.json",
    )


def configure_logging(level: str, *, rich: bool | None = None) -> None:
    """Log to stderr (stdout may carry the protocol): colours on a terminal, plain lines otherwise."""
    use_rich = sys.stderr.isatty() if rich is None else rich
    handler: logging.Handler
    if use_rich:
        handler = RichHandler(console=stderr, show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("switchyard").setLevel(level.upper())


def load(args: argparse.Namespace) -> GatewayConfig:
    """Load the configuration named on the command line (raises ConfigError)."""
    return load_config(args.config)


@asynccontextmanager
async def started_gateway(config: GatewayConfig, *, show_progress: bool = True) -> AsyncGenerator[Gateway, None]:
    """Run a gateway and wait for every server's first attempt, showing progress on a terminal."""
    gateway = Gateway(config)
    async with gateway.running():
        if show_progress and stderr.is_terminal:
            with stderr.status("starting servers...") as status:
                while not gateway.started.is_set():
                    up = sum(1 for u in gateway.upstreams.values() if u.state is UpstreamState.UP)
                    down = sum(1 for u in gateway.upstreams.values() if u.state is UpstreamState.DOWN)
                    status.update(f"starting servers: {up} up, {down} down, {len(gateway.upstreams)} configured")
                    with anyio.move_on_after(0.1):
                        await gateway.started.wait()
        else:
            await gateway.started.wait()
        yield gateway


T = TypeVar("T")


def run_plainly(main: Callable[[], Awaitable[T]]) -> T:
    """`anyio.run(main)`, with an error raised inside the gateway's task group (which arrives wrapped in an
    exception group) re-raised as itself, so the command line reports it in one line."""
    try:
        return anyio.run(main)
    except BaseExceptionGroup as group:
        errors = group.exceptions
        if len(errors) == 1 and isinstance(errors[0], SwitchyardError):
            raise errors[0] from None
        raise


def status_table(gateway: Gateway) -> Table:
    """The `check` table: server, era, tools, prompts, resources, status, error."""
    table = Table(title="servers")
    for column in ("server", "era", "tools", "prompts", "resources", "status", "error"):
        table.add_column(column, overflow="fold")
    for name, upstream in gateway.upstreams.items():
        snap = upstream.snapshot
        up = upstream.state is UpstreamState.UP and snap is not None
        table.add_row(
            name,
            snap.era if up and snap else "-",
            str(len(snap.tools)) if up and snap else "-",
            str(len(snap.prompts)) if up and snap else "-",
            str(len(snap.resources) + len(snap.templates)) if up and snap else "-",
            "[green]up[/]" if up else f"[red]{upstream.state.value}[/]",
            upstream.last_error or "",
        )
    return table
