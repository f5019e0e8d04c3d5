"""A process that writes audit rows as fast as it can and prints each row's id once it is acknowledged
(committed), one per line. The kill -9 test kills it mid-stream and checks every printed id is in the file.

Usage: python audit_writer.py DB_PATH
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence

from switchyard.store.audit import AuditRow, SqliteAuditStore


def acknowledged(ids: Sequence[str]) -> None:
    sys.stdout.write("\n".join(ids) + "\n")
    sys.stdout.flush()


def main() -> None:
    store = SqliteAuditStore(sys.argv[1], on_commit=acknowledged, batch_size=500)
    store.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    n = 0
    while True:
        n += 1
        row = AuditRow(
            event=f"row-{n}", time=time.time(), principal="load", principal_kind="api_key", client=None, era="",
            method="tools/call", server="s", tool="t", arguments=json.dumps({"n": n, "pad": "x" * 200}),
            result_bytes=100, is_error=False, latency_ms=0.1, decision="allowed", reason="",
        )  # fmt: skip
        while not store.submit(row):
            time.sleep(0.001)  # the queue is full: let the writer catch up (this process is only a load source)


if __name__ == "__main__":
    main()
