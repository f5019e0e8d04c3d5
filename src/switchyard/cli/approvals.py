"""`switchyard approve-call <id>`: approve (or `--deny`) a call the gateway held for a human; `--list` shows
the calls waiting.

Owns the command. The id is the one the refusal message named; the decision is written to the store file
(`switchyard.store.path`, or `--store`), where the running gateway reads it when the same call is retried.
A decision holds for `switchyard.flows.approvals.ttl` seconds (`--ttl` overrides).
"""

from __future__ import annotations

import argparse
import getpass
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from switchyard.approvals import SqliteApprovalStore
from switchyard.cli.common import add_config_option, load, stderr
from switchyard.config import ApprovalSettings
from switchyard.errors import InvalidRequest, NotFound

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:  # pyright: ignore[reportPrivateUsage]
    """Add the `approve-call` command."""
    parser = subparsers.add_parser("approve-call", help="approve or deny a call held for a human's approval")
    parser.add_argument("id", nargs="?", help="the approval id from the refusal message")
    parser.add_argument("--deny", action="store_true", help="deny the call instead")
    parser.add_argument("--list", action="store_true", help="list the calls waiting for approval")
    parser.add_argument("--json", action="store_true", help="with --list: JSON lines instead of a table")
    parser.add_argument(
        "--ttl", type=_ttl, help="seconds the decision holds, above 0, at most 30 days (default: flows.approvals.ttl)"
    )
    parser.add_argument("--store", help="the store file (default: switchyard.store.path of the config)")
    add_config_option(parser)
    parser.set_defaults(run=_run)


_MAX_TTL = 30 * 86400.0
"""The bound `flows.approvals.ttl` has in the configuration."""


def _ttl(text: str) -> float:
    """`--ttl`: a number of seconds in (0, 30 days], as the configuration allows (a decision that expires at
    once would only drop the pending call)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= _MAX_TTL:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be above 0 and at most {_MAX_TTL:g} seconds (30 days), got {text}")
    return value


def _settings(args: argparse.Namespace) -> tuple[Path, ApprovalSettings]:
    if args.store:
        return Path(args.store), ApprovalSettings()
    config = load(args)
    return config.switchyard.store.resolved_path, config.switchyard.flows.approvals


def _when(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _run(args: argparse.Namespace) -> int:
    path, settings = _settings(args)
    store = SqliteApprovalStore(path)
    try:
        if args.list:
            return _list(store, args.json)
        if not args.id:
            raise InvalidRequest("name the call to approve: switchyard approve-call <id> (see --list)")
        ttl = args.ttl if args.ttl is not None else settings.ttl
        try:
            decided = store.decide(args.id, not args.deny, now=time.time(), ttl=ttl, by=f"cli:{getpass.getuser()}")
        except NotFound as exc:  # the command ran and found nothing to decide: exit 1, as `keys revoke` does
            stderr.print(exc.message, markup=False)
            return 1
    finally:
        store.close()
    stderr.print(
        f"call {decided.id} ({decided.tool} for '{decided.principal}') {decided.status} until "
        f"{_when(decided.expires)}; retry the same call",
        markup=False,
    )
    return 0


def _list(store: SqliteApprovalStore, as_json: bool) -> int:
    waiting = store.listing(time.time())
    if as_json:
        for a in waiting:
            row = {"id": a.id, "principal": a.principal, "server": a.server, "tool": a.tool}
            print(json.dumps({**row, "arguments": a.arguments, "reason": a.reason, "created": a.created}))
        return 0
    table = Table(title="calls waiting for approval")
    for column in ("id", "principal", "tool", "arguments", "reason", "requested"):
        table.add_column(column, overflow="fold")
    for a in waiting:
        table.add_row(a.id, a.principal, a.tool, a.arguments, a.reason, _when(a.created))
    Console().print(table)
    return 0
