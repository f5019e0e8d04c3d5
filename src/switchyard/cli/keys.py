"""`switchyard keys create|list|revoke`: API keys for the HTTP front.

Owns the key commands. A new key is printed once, alone on stdout (so a script can capture it); only its hash
is stored. Keys live in the store file (`switchyard.store.path`, or `--store`).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from switchyard.cli.common import add_config_option, load, stderr
from switchyard.errors import InvalidRequest
from switchyard.identity import is_qualified
from switchyard.store.keys import SqliteKeyStore

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:  # pyright: ignore[reportPrivateUsage]
    """Add the `keys` command group."""
    parser = subparsers.add_parser("keys", help="create, list and revoke API keys for the HTTP front")
    sub = parser.add_subparsers(title="key commands", metavar="ACTION")
    create = sub.add_parser("create", help="mint a key (shown once)")
    create.add_argument("principal", help="who the key identifies (policy rules name it)")
    create.add_argument("--group", action="append", default=[], help="a group for policy rules (repeatable)")
    create.add_argument("--note", default="", help="a free-text note, e.g. where the key is used")
    create.set_defaults(run=_create)
    listing = sub.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    listing.set_defaults(run=_list)
    revoke = sub.add_parser("revoke", help="revoke a key by id; applies to the next request")
    revoke.add_argument("id", help="the key id shown by `keys list` (or the whole key)")
    revoke.set_defaults(run=_revoke)
    for command in (create, listing, revoke):
        add_config_option(command)
        command.add_argument("--store", help="the store file (default: switchyard.store.path of the config)")


def _store(args: argparse.Namespace) -> SqliteKeyStore:
    if args.store:
        return SqliteKeyStore(Path(args.store))
    return SqliteKeyStore(load(args).switchyard.store.resolved_path)


def _when(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _create(args: argparse.Namespace) -> int:
    if not args.principal.strip():
        raise InvalidRequest("the principal must not be empty")
    if is_qualified(args.principal) or args.principal in ("local", "anonymous"):
        # Policy reads "jwt:x" as a kind and an id, and "local"/"anonymous" as the gateway's own principals.
        raise InvalidRequest(
            f"the principal {args.principal!r} would be read as another kind of caller in policy rules; "
            "choose a name that is not 'local' or 'anonymous' and does not start with 'api_key:', 'jwt:', "
            "'local:' or 'anonymous:'"
        )
    store = _store(args)
    try:
        record, plaintext = store.create(args.principal, tuple(args.group), args.note)
    finally:
        store.close()
    stderr.print(f"key {record.id} for '{record.principal}' created; it is shown once, store it now:", markup=False)
    print(plaintext)
    return 0


def _list(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        found = store.list()
    finally:
        store.close()
    if args.json:
        for key in found:
            row = {"id": key.id, "principal": key.principal, "groups": list(key.groups), "created": key.created}
            print(json.dumps({**row, "revoked": key.revoked, "note": key.note}))
        return 0
    table = Table(title="API keys")
    for column in ("id", "principal", "groups", "created", "revoked", "note"):
        table.add_column(column, overflow="fold")
    for key in found:
        table.add_row(key.id, key.principal, ", ".join(key.groups), _when(key.created), _when(key.revoked), key.note)
    Console().print(table)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        revoked = store.revoke(args.id)
    finally:
        store.close()
    if not revoked:
        stderr.print(f"no active key {args.id}", markup=False)
        return 1
    stderr.print(f"key {args.id} revoked", markup=False)
    return 0
