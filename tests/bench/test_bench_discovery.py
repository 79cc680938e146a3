"""``python -m bench discovery --quick`` runs the real discovery cycle and reports sane figures."""

from __future__ import annotations

import json

import pytest

from bench.__main__ import BENCHMARKS
from bench.__main__ import main as bench_main
from bench._cloud import discovery_minimum
from bench.discovery import minimum_calls
from emulator.clock import SystemClock
from emulator.seeds import build_seed


def test_quick_discovery_benchmark_prints_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["discovery", "--quick"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert set(figures) == {
        "calls",
        "min_calls",
        "calls_ratio",
        "round_trips",
        "wall_s",
        "rss_mb",
        "throttled",
        "retried_ok",
    }
    # The quick tenant (seed 1: 2,000 decisions in 20 reviews, 2,200 users) needs 615 requests
    # at least: 1 definitions page, 20 instance lists, 20 decision pages, 1 group, 2 owner lists,
    # the 373 principals' managers from 22 pages of the user list, and the mailbox settings of
    # its 549 reviewers (the language of their cards).
    assert figures["min_calls"] == 66 + 549
    assert figures["throttled"] == 0 and figures["retried_ok"] is True
    assert figures["calls"] >= figures["min_calls"]
    assert figures["calls_ratio"] == pytest.approx(figures["calls"] / figures["min_calls"], 1e-3)
    # $batch makes round trips fewer than requests: managers and mailboxes go 20 to a call.
    assert 1 + 20 + 373 // 20 + 549 // 20 <= figures["round_trips"] < figures["calls"]
    assert 0 < figures["wall_s"] < 120
    assert 30 < figures["rss_mb"] < 2_000
    assert any("2000 pending decisions in 20 reviews" in line for line in lines)


def test_the_minimum_counts_documented_pages_and_the_cheaper_way_to_managers() -> None:
    tenant = build_seed(
        "generated",
        SystemClock(),
        params={"decisions": 2_400, "instances": 2, "reviewers": 10},
    )
    minimum = discovery_minimum(tenant)
    facts = minimum["facts"]
    parts = minimum_calls(facts)
    assert minimum["pending_items"] == 2_400
    # 1,200 pending decisions per review: twelve pages of 100 each.
    assert parts["definitions"] == 1 and parts["instance_lists"] == 2
    assert parts["decision_pages"] == 24
    managers = {
        d.principal_id
        for i in tenant.instances.values()
        if any(s.query == "./manager" for s in i.reviewers)
        for d in i.decisions.values()
    }
    assert facts["manager_principals"] == len(managers)
    assert facts["tenant_users"] == len(tenant.users)
    # The cheaper of one look-up per principal and the user list, 100 users a page.
    pages = -(-len(tenant.users) // 100)
    assert parts["managers"] == min(len(managers), pages)
    # Both ways, by hand.
    few = {**facts, "manager_principals": 3, "tenant_users": 1_000}
    many = {**facts, "manager_principals": 900, "tenant_users": 1_000}
    assert minimum_calls(few)["managers"] == 3 and minimum_calls(many)["managers"] == 10
    assert minimum_calls({**facts, "manager_principals": 0})["managers"] == 0


def test_the_dispatcher_knows_the_three_benchmarks(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["--list"]) == 0
    names = capsys.readouterr().out.split()
    assert {"discovery", "fanout", "decide"} <= set(names)
    assert BENCHMARKS["fanout"] == "bench.fanout" and BENCHMARKS["decide"] == "bench.decide"
