"""``python -m bench decide --quick``: every figure of issue 15, from clicks that all landed."""

from __future__ import annotations

import json
import math

import pytest

from bench.__main__ import main as bench_main
from bench._common import percentile
from bench.decide import FIGURE_KEYS

BOT_PHASES = ("warm-up", "alone", "burst", "burst-45", "open")


def test_quick_decide_benchmark_prints_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["decide", "--quick"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert list(figures) == list(FIGURE_KEYS)
    assert figures["errors"] == 0, lines
    for key in FIGURE_KEYS[:-1]:
        value = figures[key]
        assert isinstance(value, float | int) and math.isfinite(value) and value > 0, (key, value)
    # Overheads exclude Graph's time: a p99 is never below its p50.
    assert figures["alone_p50_ms"] <= figures["alone_p99_ms"]
    assert figures["open_p50_ms"] <= figures["open_p99_ms"]

    counts = json.loads(next(line for line in lines if line.startswith("counts "))[7:])
    assert set(counts) == {*BOT_PHASES, "floor"}
    # --quick: 20 at once, 10 of 45-item reviews, 10 alone, 50/s for 2 s, 200 to the floor.
    expected = {"alone": 10, "burst": 20, "burst-45": 10, "open": 100, "floor": 200}
    for phase, clicks in expected.items():
        assert counts[phase]["clicks"] == clicks, (phase, counts[phase])
    for phase in BOT_PHASES:
        seen = counts[phase]
        # Every click answered with a card, Graph received exactly one PATCH per click, and
        # every click decided an item of its own.
        assert (
            seen["answered_with_card"]
            == seen["clicks"]
            == seen["patches_204"]
            == seen["items_patched"]
        ), (phase, seen)
        assert seen["patches_other"] == 0, (phase, seen)
    # The floor decides nothing: a card for every invoke, no write.
    assert counts["floor"]["answered_with_card"] == 200
    assert counts["floor"]["patches_204"] == counts["floor"]["patches_other"] == 0
    # One warm-up click per reviewer: 20 reviewers of 3-item reviews and 10 of 45 items (quick).
    assert counts["warm-up"]["clicks"] == 30
    assert any("bot in 1 worker process(es)" in line for line in lines)


def test_decide_benchmark_with_two_workers_lands_every_click(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert bench_main(["decide", "--quick", "--workers", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert list(figures) == list(FIGURE_KEYS) and figures["errors"] == 0, lines
    counts = json.loads(next(line for line in lines if line.startswith("counts "))[7:])
    for phase in BOT_PHASES:
        seen = counts[phase]
        assert seen["clicks"] == seen["patches_204"] == seen["items_patched"], (phase, seen)
    assert any("bot in 2 worker process(es)" in line for line in lines)


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 201)]
    assert percentile(values, 0.99) == 198.0
    assert percentile(values, 0.5) == 100.0
    assert percentile([5.0], 0.99) == 5.0
