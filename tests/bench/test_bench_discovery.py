"""``python -m bench discovery --quick`` runs the real discovery cycle and reports sane figures."""

from __future__ import annotations

import json

import pytest

from bench.__main__ import BENCHMARKS
from bench.__main__ import main as bench_main
from bench._cloud import discovery_minimum
from emulator.clock import SystemClock
from emulator.seeds import build_seed


def test_quick_discovery_benchmark_prints_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["discovery", "--quick"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert set(figures) == {"calls", "min_calls", "calls_ratio", "round_trips", "wall_s", "rss_mb"}
    # The quick tenant (seed 1: 2,000 decisions in 20 reviews) needs 966 requests at least:
    # 1 definitions page, 20 instance lists, 20 decision pages, 1 group, 2 owner lists,
    # 373 distinct principals' managers, and the mailbox settings of its 549 reviewers (the
    # language of their cards).
    assert figures["min_calls"] == 417 + 549
    assert figures["calls"] >= figures["min_calls"]
    assert figures["calls_ratio"] == pytest.approx(figures["calls"] / figures["min_calls"], 1e-3)
    # $batch makes round trips fewer than requests: managers and mailboxes go 20 to a call.
    assert 1 + 20 + 373 // 20 + 549 // 20 <= figures["round_trips"] < figures["calls"]
    assert 0 < figures["wall_s"] < 120
    assert 30 < figures["rss_mb"] < 2_000
    assert any("2000 pending decisions in 20 reviews" in line for line in lines)


def test_the_minimum_counts_pages_at_999_and_one_look_up_per_directory_object() -> None:
    tenant = build_seed(
        "generated",
        SystemClock(),
        params={"decisions": 2_400, "instances": 2, "reviewers": 10},
    )
    minimum = discovery_minimum(tenant)
    parts = minimum["parts"]
    assert minimum["page_size"] == 999
    assert minimum["pending_items"] == 2_400
    # 1,200 pending decisions per review: two pages of 999 each.
    assert parts["definitions"] == 1 and parts["instance_lists"] == 2
    assert parts["decision_pages"] == 4
    managers = {
        d.principal_id
        for i in tenant.instances.values()
        if any(s.query == "./manager" for s in i.reviewers)
        for d in i.decisions.values()
    }
    assert parts["managers"] == len(managers)
    assert minimum["min_calls"] == sum(parts.values())


def test_the_dispatcher_knows_the_three_benchmarks(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["--list"]) == 0
    names = capsys.readouterr().out.split()
    assert {"discovery", "fanout", "decide"} <= set(names)
    assert BENCHMARKS["fanout"] == "bench.fanout" and BENCHMARKS["decide"] == "bench.decide"
