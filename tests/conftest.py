"""Shared pytest set-up for Switchyard's tests.

- `anyio_backend`: `@pytest.mark.anyio` tests run on asyncio (anyio's pytest plugin ships with anyio).
- `peers`: the functions of `switchyard.testing.peers` (real servers and clients installed by
  `scripts/bootstrap`), wrapped so that a missing peer SKIPS the test with the reason on a developer's
  machine but FAILS it when `CI` is set: CI must never go green by skipping.
- `require_peer(factory, *args)`: the same policy for code outside a fixture.
- Every test under `tests/e2e/` is marked `e2e`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest

from switchyard.testing import peers as peers_module
from switchyard.testing.peers import PeerMissingError

T = TypeVar("T")

IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
TESTS_DIR = Path(__file__).resolve().parent


def missing_peer(exc: PeerMissingError) -> NoReturn:
    """Skip (developer machine) or fail (CI) the current test because a peer is not installed."""
    if IN_CI:
        pytest.fail(f"{exc} [CI=true: a missing peer is a failure, not a skip]", pytrace=False)
    pytest.skip(str(exc))


def require_peer(factory: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a `switchyard.testing.peers` function; a missing peer skips the test, or fails it in CI."""
    try:
        return factory(*args, **kwargs)
    except PeerMissingError as exc:
        missing_peer(exc)


class Peers:
    """`switchyard.testing.peers` with the skip-or-fail policy applied to every function.

    `peers.time_server()`, `peers.fixture_server("fast")`, `peers.inspector_cli()`, ... return what the
    module's functions return; see that module for the list.
    """

    def __getattr__(self, name: str) -> Any:
        attr = getattr(peers_module, name)
        if not callable(attr) or isinstance(attr, type):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return require_peer(attr, *args, **kwargs)

        call.__doc__ = attr.__doc__
        return call


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Run anyio tests on asyncio only."""
    return "asyncio"


@pytest.fixture(scope="session")
def peers() -> Peers:
    """Real MCP peers (servers, clients) to test against; see `switchyard.testing.peers`."""
    return Peers()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return TESTS_DIR.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/e2e/ as `e2e` (real subprocesses, servers, HTTP)."""
    e2e_dir = TESTS_DIR / "e2e"
    for item in items:
        if e2e_dir in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


def pytest_configure(config: pytest.Config) -> None:
    """Keep every test's persistent state (pins, audit rows, keys) out of the user's state directory.

    Gateways started by tests without an explicit store path, in this process or as subprocesses, resolve
    `${XDG_STATE_HOME}` to a folder private to this test run. The model cache (`XDG_CACHE_HOME`) is shared
    on purpose: building the encoder graph once is enough.
    """
    import tempfile  # noqa: PLC0415

    if "SWITCHYARD_TEST_STATE" not in os.environ:
        state = tempfile.mkdtemp(prefix="switchyard-test-state-")
        os.environ["SWITCHYARD_TEST_STATE"] = state
        os.environ["XDG_STATE_HOME"] = state
