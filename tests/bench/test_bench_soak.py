"""``python -m bench soak --quick``: the bot process under chaos meets every target, on SQLite and
on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from bench.__main__ import main as bench_main

# About 80 s each: a 75-second run, then the end-of-run checks.
pytestmark = pytest.mark.slow

FIGURES = {
    "minutes",
    "kills",
    "outage_s_max",
    "cards_lost",
    "cards_duplicated",
    "decisions_lost",
    "store_graph_mismatches",
    "http_5xx",
}


def check(code: int, out: str) -> dict[str, float]:
    lines = out.strip().splitlines()
    figures: dict[str, float] = json.loads(lines[-1])
    assert list(figures) == [
        "minutes",
        "kills",
        "outage_s_max",
        "cards_lost",
        "cards_duplicated",
        "decisions_lost",
        "store_graph_mismatches",
        "http_5xx",
    ]
    assert set(figures) == FIGURES
    report = "\n".join(lines)
    assert code == 0, report
    assert figures["kills"] >= 1, report
    assert figures["outage_s_max"] > 0, report
    assert figures["cards_lost"] == 0, report
    assert figures["decisions_lost"] == 0, report
    assert figures["store_graph_mismatches"] == 0, report
    assert figures["http_5xx"] == 0, report
    # Duplicates only within the allowance of the kills (the run's own line says how many).
    outside = [re.search(r"outside it (\d+)\)", line) for line in lines]
    assert [int(m.group(1)) for m in outside if m] == [0], report
    # The reviewers did click, and the clicks were written.
    clicked = [re.search(r"soak: (\d+) click groups on (\d+) items", line) for line in lines]
    assert any(m and int(m.group(1)) > 0 and int(m.group(2)) > 0 for m in clicked), report
    return figures


def test_quick_soak_on_sqlite(capsys: pytest.CaptureFixture[str]) -> None:
    code = bench_main(["soak", "--quick"])
    check(code, capsys.readouterr().out)


async def test_quick_soak_on_postgres(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import TEST_DATABASE_URL, drop_postgres_schema, make_postgres_store

    store, schema = await make_postgres_store()  # skips (or fails on CI) without PostgreSQL
    await store.close()
    await drop_postgres_schema(schema)
    # The benchmark makes a database of its own on that server (and drops it).
    code = await asyncio.to_thread(
        bench_main, ["soak", "--quick", "--database", TEST_DATABASE_URL, "--seed", "15"]
    )
    check(code, capsys.readouterr().out)
