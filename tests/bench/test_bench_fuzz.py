"""``python -m bench fuzz``: its figures, on a short run."""

from __future__ import annotations

import json

import pytest

from bench.__main__ import main as bench_main


@pytest.mark.slow
def test_a_short_fuzz_run_prints_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["fuzz", "--cases", "60", "--warmup", "20", "--seed", "7"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert set(figures) == {"cases", "http_5xx", "error_log_lines", "memory_ratio"}
    assert figures["cases"] == 80
    assert figures["http_5xx"] == 0 and figures["error_log_lines"] == 0
    assert 0 < figures["memory_ratio"] <= 1.2
    assert any(line.startswith("by family/target: ") for line in lines)
