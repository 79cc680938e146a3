"""``python -m bench fanout --quick`` delivers every card under the limits and reports rates."""

from __future__ import annotations

import json

import pytest

from bench.__main__ import main as bench_main


def test_quick_fanout_benchmark_prints_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["fanout", "--quick"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert set(figures) == {"rate_fraction", "unhandled_429", "max_rate_ratio"}
    assert figures["unhandled_429"] == 0
    # The connector admits at most 50 sends in any second: above 1.0 the measurement is wrong.
    assert 0.2 < figures["rate_fraction"] <= 1.05
    # Without limits the bot must at least beat the limited run.
    assert figures["max_rate_ratio"] > figures["rate_fraction"]
    assert any("150 sends accepted" in line for line in lines)


def test_scale_out_flags_say_not_yet(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["fanout", "--replicas", "2", "--database", "postgresql://x/y"]) == 2
    assert "not implemented yet" in capsys.readouterr().out
