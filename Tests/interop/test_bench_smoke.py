"""ldlm-bench runs against a real server and reports throughput without errors."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import REPO

BENCH_BIN = os.environ.get("LDLM_BENCH_BIN", str(REPO / ".build" / "debug" / "ldlm-bench"))


@pytest.mark.parametrize("scenario", ["pair", "contended"])
def test_ldlm_bench_reports_throughput_and_no_errors(server, scenario):
    if not os.access(BENCH_BIN, os.X_OK):
        pytest.fail(f"ldlm-bench not built: {BENCH_BIN} (set LDLM_BENCH_BIN)")
    result = subprocess.run(
        [BENCH_BIN, "--address", server.address, "--scenario", scenario, "--connections", "4",
         "--duration", "1", "--warmup", "0.2", "--json"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["scenario"] == scenario
    assert report["ops_per_second"] > 0
    assert report["operations"] > 0
    assert report["errors"] == {}
    assert report["latency_ms"]["p50"] > 0
    if scenario == "contended":
        assert report["fairness"]["clients"] == 4
        assert report["fairness"]["min"] > 0


def test_ldlm_bench_disconnect_releases_every_lock(server):
    result = subprocess.run(
        [BENCH_BIN, "--address", server.address, "--scenario", "disconnect", "--locks", "2000", "--json"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["locks_released"] == 2000, report
    assert report["errors"] == {}, report
    assert 0 < report["release_ms"] < 5000, report

