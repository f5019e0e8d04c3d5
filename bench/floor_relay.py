"""A do-nothing stdio relay: what one extra process hop costs a stdio MCP call (bench/overhead.py).

    python bench/floor_relay.py -- COMMAND [ARGS...]

Starts COMMAND with pipes and copies bytes, as they arrive, from this process's stdin to the child's stdin
and from the child's stdout to this process's stdout: one thread each, blocking `os.read` / `os.write`, no
parsing. When stdin ends, the child's stdin is closed and the relay exits with the child (SIGTERM to the
relay is passed on). It bounds issue 2's throughput target: no gateway process between a client and a stdio
server costs less per call than this relay. Run by `bench/overhead.py --compare floor-relay`. Not a product.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading


def _copy(src: int, dst: int, on_end: object = None) -> None:
    try:
        while data := os.read(src, 65536):
            view = memoryview(data)
            while view:
                view = view[os.write(dst, view) :]
    except OSError:
        pass
    if callable(on_end):
        on_end()


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: floor_relay.py -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    assert child.stdin is not None
    assert child.stdout is not None
    signal.signal(signal.SIGTERM, lambda *_: child.terminate())
    to_child = child.stdin.fileno()
    threading.Thread(target=_copy, args=(0, to_child, child.stdin.close), daemon=True).start()
    out = threading.Thread(target=_copy, args=(child.stdout.fileno(), 1), daemon=True)
    out.start()
    code = child.wait()
    out.join(5)
    return code


if __name__ == "__main__":
    sys.exit(main())
