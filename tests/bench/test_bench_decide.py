"""``python -m bench decide --quick``: signed clicks answered with cards, overhead figures."""

from __future__ import annotations

import json

import pytest

from bench.__main__ import main as bench_main
from bench._common import percentile


def test_quick_decide_benchmark_prints_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["decide", "--quick"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert set(figures) == {"overhead_p50_ms", "overhead_p99_ms", "errors"}
    assert figures["errors"] == 0
    # Overhead excludes the 100 ms Graph latency: it is positive and well below it.
    assert 0 < figures["overhead_p50_ms"] <= figures["overhead_p99_ms"] < 1_000
    assert any("20 reviewers click at once" in line for line in lines)


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 201)]
    assert percentile(values, 0.99) == 198.0
    assert percentile(values, 0.5) == 100.0
    assert percentile([5.0], 0.99) == 5.0
