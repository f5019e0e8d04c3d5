"""`StdioUpstream`: an MCP server started as a subprocess, behind the process guard.

Owns: building the subprocess command (wrapped by `reaper.py` so no child outlives the gateway), its
environment, and relaying its stderr to the gateway log line by line, prefixed with the server name.
Framing and shutdown (close stdin, grace period, kill the process group) are `pipes.open_stdio`. Does not own
the session (see `client.py`).
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import threading
from collections.abc import AsyncGenerator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

from mcp.client.stdio import StdioServerParameters, get_default_environment

from switchyard.config import StdioServerConfig, mask_secrets
from switchyard.upstream.client import ClientUpstream
from switchyard.upstream.lane import UpstreamLane, lanes_enabled
from switchyard.upstream.pipes import open_stdio

__all__ = ["StdioUpstream"]

_REAPER = str(Path(__file__).with_name("reaper.py"))
logger = logging.getLogger("switchyard.upstream.stderr")


class _StderrRelay:
    """Reads a pipe in a daemon thread and logs each line as `[server] line`; keeps the last lines."""

    def __init__(self, server: str, secrets: Mapping[str, str] | None = None) -> None:
        self.server = server
        self._secrets: Mapping[str, str] = secrets or {}
        """The server's `env` values, masked in every relayed line (a server may print its own token)."""
        self.tail: collections.deque[str] = collections.deque(maxlen=20)
        read_fd, write_fd = os.pipe()
        self.writer: TextIO = os.fdopen(write_fd, "w")
        self._reader = os.fdopen(read_fd, "r", encoding="utf-8", errors="replace")
        threading.Thread(target=self._pump, name=f"stderr-{server}", daemon=True).start()

    def _pump(self) -> None:
        with self._reader:
            for line in self._reader:
                text = mask_secrets(line.rstrip("\n"), self._secrets)
                if text:
                    self.tail.append(text)
                    logger.info("[%s] %s", self.server, text)

    def close_writer(self) -> None:
        """Drop the gateway's copy of the write end, so the reader sees EOF when the server exits."""
        if not self.writer.closed:
            self.writer.close()


class StdioUpstream(ClientUpstream):
    """A stdio MCP server started by the gateway."""

    def __init__(self, name: str, config: StdioServerConfig, *, shutdown_grace: float = 2.0, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.config = config
        self._grace = shutdown_grace
        self._relay: _StderrRelay | None = None
        self._stdio_lane = UpstreamLane(name, on_log=self.inflight.log) if lanes_enabled() else None
        self.lane = self._stdio_lane

    def parameters(self) -> StdioServerParameters:
        """The guarded command line for this server."""
        cfg = self.config
        # The guard's interpreter may add LC_CTYPE (PEP 538 locale coercion); the server must not inherit it.
        given = get_default_environment() | dict(cfg.env)
        unset = [] if "LC_CTYPE" in given else ["--unset", "LC_CTYPE"]
        args = ["-I", _REAPER, str(os.getpid()), str(self._grace), *unset, "--", cfg.command, *cfg.args]
        return StdioServerParameters(
            command=sys.executable,
            args=args,
            env=dict(cfg.env) or None,
            cwd=cfg.cwd,
            encoding_error_handler="replace",
        )

    def _target(self, stack: AsyncExitStack) -> Any:
        relay = _StderrRelay(self.name, self._secret_values())
        self._relay = relay
        stack.callback(relay.close_writer)
        params = self.parameters()

        @asynccontextmanager
        async def spawned() -> AsyncGenerator[tuple[Any, Any]]:
            async with open_stdio(
                params.command,
                params.args,
                env=params.env,
                cwd=params.cwd,
                errlog=relay.writer,
                server=self.name,
                lane=self._stdio_lane,
                exit_grace=self._grace,
            ) as streams:
                relay.close_writer()  # the child holds its own copy of the stderr pipe now
                yield streams

        return spawned()

    def _secret_values(self) -> Mapping[str, str]:
        return self.config.env

    def _describe_failure(self, exc: BaseException) -> str:
        base = super()._describe_failure(exc)
        if self._relay is not None and self._relay.tail:
            return f"{base}; last stderr line: {self._relay.tail[-1][:200]}"
        return base
