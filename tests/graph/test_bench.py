"""``python -m bench graph --quick`` keeps working (CI runs it on every change)."""

from __future__ import annotations

import json

import pytest

from bench.__main__ import BENCHMARKS
from bench.__main__ import main as bench_main


def test_quick_graph_benchmark_prints_figures_and_a_json_last_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert bench_main(["graph", "--quick"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert set(figures) == {"items", "calls", "round_trips", "wall_s"}
    assert figures["items"] == 600
    # 1 definitions page + 30 instance lists + 30 decision lists; 2 + 2 $batch round trips.
    assert figures["calls"] == 61
    assert figures["round_trips"] == 5
    assert figures["wall_s"] > 0
    assert any("minimum for this tenant: 61" in line for line in lines)


def test_the_dispatcher_lists_graph_and_refuses_unknown_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert BENCHMARKS["graph"] == "bench.graph"
    assert bench_main(["--list"]) == 0
    assert "graph" in capsys.readouterr().out.splitlines()
    assert bench_main(["no-such-benchmark"]) == 2
