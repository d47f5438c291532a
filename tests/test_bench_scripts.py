"""The benchmark scripts are not run by the suite (minutes each), but they must keep importing
and parsing their arguments: a broken bench is found here, not on the day it is needed."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess:
    """`python *args` from the project root, as the README runs the benches."""
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("module", ["webhook_ingest", "lifecycle", "soak", "merchant_day",
                                    "lock_ops"])
def test_each_bench_script_imports_and_explains_itself(module):
    result = run("-m", f"bench.{module}", "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout


def test_the_soak_names_its_faults_and_refuses_an_unknown_one():
    result = run("-m", "bench.soak", "--help")
    for fault in ("worker-kill", "redis-restart", "ongoing-outage", "shopify-throttle",
                  "db-outage"):
        assert fault in result.stdout
    refused = run("-m", "bench.soak", "--fault", "worker-kill,meteor")
    assert refused.returncode == 2 and "meteor" in refused.stderr


def test_the_merchant_day_prints_its_compression_and_refuses_a_bad_window():
    from bench.merchant_day import parse_args

    args = parse_args(["--hours", "10-12", "--minutes", "4"])
    assert (args.start, args.end, args.compression, args.replay_s) == (10, 12, 30.0, 240.0)
    assert parse_args(["--hours", "8-10", "--compression", "60"]).replay_s == 120.0
    refused = run("-m", "bench.merchant_day", "--hours", "16-10")
    assert refused.returncode == 2 and "--hours" in refused.stderr
