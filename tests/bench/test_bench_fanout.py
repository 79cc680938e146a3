"""``python -m bench fanout --quick`` delivers every card under the limits and reports rates."""

from __future__ import annotations

import asyncio
import json

import pytest

from bench.__main__ import main as bench_main


def test_quick_fanout_benchmark_prints_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["fanout", "--quick"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert set(figures) == {
        "rate_fraction",
        "unhandled_429",
        "max_rate_ratio",
        "backoff_without_retry_after",
    }
    assert figures["unhandled_429"] == 0
    # The run met 429s without Retry-After (a fault rule sends some) and recovered from them.
    assert figures["backoff_without_retry_after"] is True
    # The connector admits at most 50 sends in any second: above 1.0 the measurement is wrong.
    assert 0.2 < figures["rate_fraction"] <= 1.05
    # Without limits the bot must at least beat the limited run.
    assert figures["max_rate_ratio"] > figures["rate_fraction"]
    assert any("150 sends accepted" in line for line in lines)


async def test_replicas_share_the_tenant_limit(capsys: pytest.CaptureFixture[str]) -> None:
    """Three app replicas on one PostgreSQL database still stay under the per-tenant limit."""
    from tests.conftest import TEST_DATABASE_URL, make_postgres_store

    store, schema = await make_postgres_store()  # skips (or fails on CI) without PostgreSQL
    await store.close()
    from tests.conftest import drop_postgres_schema

    await drop_postgres_schema(schema)
    code = await asyncio.to_thread(
        bench_main, ["fanout", "--quick", "--replicas", "3", "--database", TEST_DATABASE_URL]
    )
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert figures["unhandled_429"] == 0
    assert 0.2 < figures["rate_fraction"] <= 1.05
    assert any("3 replicas" in line for line in lines)


def test_replicas_need_a_database(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["fanout", "--replicas", "2"]) == 2
    assert "needs --database" in capsys.readouterr().out
