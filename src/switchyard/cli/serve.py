"""`switchyard serve`: run the gateway for a desktop client on stdio (HTTP comes with the HTTP front)."""

from __future__ import annotations

import argparse

import anyio

from switchyard.cli.common import add_config_option, configure_logging, load
from switchyard.gateway import Gateway
from switchyard.server.stdio import serve_stdio

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:  # pyright: ignore[reportPrivateUsage]
    """Add the `serve` command."""
    parser = subparsers.add_parser("serve", help="serve the gateway to one client on stdin/stdout")
    add_config_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until the client disconnects."""
    config = load(args)
    configure_logging(config.switchyard.log_level)
    anyio.run(serve_stdio, Gateway(config))
    return 0
