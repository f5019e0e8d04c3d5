"""Conformance parity: every official server scenario that passes directly also passes through Switchyard.

Runs `bench/conformance.py`'s matrix: the suite (0.1.16, and 0.2.0-alpha.12 in both eras) against the
conformance test server (`tests/fixtures/conformance/server.py`) directly over Streamable HTTP, and against
`switchyard serve --http` with the same server behind it (spawned on stdio, or a second instance on Streamable
HTTP, where forwarded calls take the HTTP lane) and naming prefix off. About a minute on two cores.

`KNOWN_GAPS` lists the scenarios that pass directly but not yet through Switchyard, each with its cause; they are
reported, not failed. Anything else that passes directly and fails through is a regression.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

KNOWN_GAPS: dict[tuple[str, str], str] = {}


def _bench_module(repo_root: Path) -> ModuleType:
    path = repo_root / "bench" / "conformance.py"
    spec = importlib.util.spec_from_file_location("switchyard_bench_conformance", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(600)
@pytest.mark.parametrize("upstream", ["stdio", "http"])
def test_every_scenario_that_passes_directly_also_passes_through_switchyard(
    peers: Any, repo_root: Path, capsys: pytest.CaptureFixture[str], upstream: str
) -> None:
    peers.conformance_cli("0.1")  # skip (or fail in CI) when the suite or Node 22 is missing
    peers.conformance_cli("0.2")
    bench = _bench_module(repo_root)
    results = bench.run_matrix(timeout=240.0, upstream=upstream)
    with capsys.disabled():
        print("\n" + bench.table(results))

    unexpected: list[str] = []
    for leg in results:
        # The direct runs must mostly pass, or parity would hold vacuously.
        passed_directly = sum(r.passed for r in leg.direct.values())
        assert passed_directly >= 0.9 * len(leg.direct), f"{leg.leg}: only {passed_directly} pass directly"
        assert set(leg.through) == set(leg.direct), f"{leg.leg}: different scenarios ran"
        for scenario in leg.regressions():
            if (leg.leg, scenario) not in KNOWN_GAPS:
                messages = "; ".join(leg.through[scenario].messages)
                unexpected.append(f"{leg.leg} {scenario}: {messages}")
    assert not unexpected, "pass directly but fail through Switchyard:\n" + "\n".join(unexpected)
