"""Process guard placed between the gateway and each stdio server (stdlib only; run as a script).

Owns: making sure no server process outlives the gateway, even when the gateway is killed with SIGKILL.
It asks Linux to send it SIGTERM when its parent dies (PR_SET_PDEATHSIG), starts the real server in its own
process group (the one the gateway created for this guard), hands the server the pipes, and on SIGTERM or
parent death terminates the whole group: SIGTERM, a grace period, then SIGKILL. When the server exits by itself,
leftover descendants in the group are ended too. It does not read or write MCP messages.

Usage: python -I reaper.py <gateway-pid> <grace-seconds> [--unset NAME]... -- <command> [args...]

`--unset NAME` removes a variable the guard's own interpreter put in the environment and the server was not
given: Python's C-locale coercion (PEP 538, which `-I` cannot turn off) sets LC_CTYPE when no locale is set.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from collections.abc import Iterable
from contextlib import suppress
from typing import NoReturn

_PR_SET_PDEATHSIG = 1


def _terminate_group(grace: float, child: int) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        os.killpg(0, signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(child, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == child:
            break
        time.sleep(0.02)
    with suppress(OSError):
        os.killpg(0, signal.SIGKILL)


def _exec_server(command: list[str], mask: Iterable[int | signal.Signals]) -> NoReturn:
    """In the forked child: restore what a fresh process expects, then become the server."""
    # Python ignores SIGPIPE and SIGXFSZ, and ignored signals survive exec: a server (or a shell pipeline it
    # runs) must get the defaults, as `subprocess` gives them. SIGTERM is back to default before it is
    # unblocked, so one already pending ends the child here, as it should: the gateway is gone.
    for signum in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        sys.stderr.write(f"cannot start {command[0]!r}: {exc.strerror}\n")
    os._exit(127)


def _parse(argv: list[str]) -> tuple[int, float, list[str], list[str]] | None:
    """(gateway pid, grace, variables to unset, command), or None when the arguments are malformed."""
    if "--" not in argv:
        return None
    split = argv.index("--")
    head, command = argv[:split], argv[split + 1 :]
    options = head[2:]
    if len(head) < 2 or not command or len(options) % 2 or any(o != "--unset" for o in options[::2]):
        return None
    try:
        return int(head[0]), float(head[1]), options[1::2], command
    except ValueError:
        return None


def main(argv: list[str]) -> int:
    parsed = _parse(argv)
    if parsed is None:
        sys.stderr.write("usage: reaper.py <gateway-pid> <grace> [--unset NAME]... -- <command> [args...]\n")
        return 2
    gateway, grace, unset, command = parsed
    for name in unset:
        os.environ.pop(name, None)
    # Hold SIGTERM until its handler knows the server's PID: one arriving in between (the gateway dying right
    # now) would otherwise end the guard with the default action and leave the server running.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != gateway:  # the gateway died before the guard was armed
        return 1
    child = os.fork()
    if child == 0:
        _exec_server(command, mask)
    # The server owns stdin/stdout now: drop ours so its EOF is the gateway's EOF.
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    signal.signal(signal.SIGTERM, lambda _s, _f: (_terminate_group(grace, child), os._exit(143)))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except ChildProcessError:
            status = 0
            break
        except InterruptedError:
            continue
    # The server is gone; end anything it left behind in its group. The guard leads that group, so this ends
    # the guard too (the gateway learns of the end from the closed pipes, not from an exit status).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with suppress(OSError):
        os.killpg(0, signal.SIGKILL)
    return os.waitstatus_to_exitcode(status) if status else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
