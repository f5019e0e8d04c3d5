"""`revision_src(rev)`: the `src` folder of a git revision, extracted into a temporary directory.

The speed-change checks (`guard_equivalence.py`, `guard_instructions.py`) run the same code twice, once from
that folder and once from the working tree, and compare.
"""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def revision_src(rev: str) -> Iterator[Path]:
    """Yield `<tmp>/src` holding `rev`'s `src` tree (`git archive`); removed on exit."""
    with tempfile.TemporaryDirectory(prefix="sy-rev-") as tmp:
        archive = Path(tmp) / "src.tar"
        subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), rev, "src"], check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        yield Path(tmp) / "src"
