"""The command line as an admin uses it: each command a subprocess, on a fresh store of its own.

In demo mode (no ``MicrosoftAppId``) the commands must read the store the demo server writes,
``data/demo.db`` under the working folder, and never create or reset it; an unknown review is one
line on stderr and exit status 1.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from app import create_app
from bot.cli import _queued
from bot.demo import wait_until_settled
from bot.settings import Settings
from bot.store import AuditEvent, InstanceRecord, ItemRecord, open_store
from bot.web.keys import STORE

ROOT = Path(__file__).resolve().parents[2]
DEMO_DB = Path("data/demo.db")
NOW = datetime.now(UTC).replace(microsecond=0)


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell without any of the bot's settings (demo mode)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("Microsoft") and k not in ("DATABASE_URL", "HOST", "PORT", "LOG_LEVEL")
    }
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def run_app(
    cwd: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *args],
        cwd=cwd,
        env=dict(env or cli_env()),
        capture_output=True,
        text=True,
        timeout=90,
    )


async def seed(url: str) -> None:
    """Two reviews: a two-stage one in its first stage, and a one-stage one; plus an ended one."""
    store = await open_store(url)
    try:
        await store.upsert_instances(
            instances=[
                InstanceRecord(
                    instance_id="inst-eng",
                    definition_id="def-eng",
                    display_name="Engineering – two-stage",
                    status="InProgress",
                    start_at=NOW - timedelta(days=3),
                    end_at=NOW + timedelta(days=2),
                    stage_id="1",
                    data={"multiStage": True, "stageCount": 2},
                ),
                InstanceRecord(
                    instance_id="inst-fin",
                    definition_id="def-fin",
                    display_name="Finance",
                    status="InProgress",
                    start_at=NOW - timedelta(days=1),
                    end_at=NOW + timedelta(days=9),
                ),
                InstanceRecord(
                    instance_id="inst-old",
                    definition_id="def-fin",
                    display_name="Finance",
                    status="Completed",
                    start_at=NOW - timedelta(days=40),
                    end_at=NOW - timedelta(days=10),
                ),
            ]
        )
        await store.upsert_items(
            items=[
                ItemRecord(instance_id="inst-eng", item_id="e1"),
                ItemRecord(instance_id="inst-eng", item_id="e2", decision="Approve"),
                ItemRecord(instance_id="inst-eng", item_id="e3"),
                ItemRecord(instance_id="inst-eng", item_id="gone", decision="Removed"),
                ItemRecord(instance_id="inst-fin", item_id="f1", decision="Deny"),
                ItemRecord(instance_id="inst-old", item_id="o1", decision="Approve"),
            ]
        )
        await store.replace_assignments(
            instance_id="inst-eng",
            pairs=[("alex", "e1"), ("megan", "e1"), ("megan", "e2"), ("lee", "e3")],
        )
        await store.replace_assignments(instance_id="inst-fin", pairs=[("alex", "f1")])
        await store.append_audit(
            event=AuditEvent(
                action="decision",
                actor="alex",
                instance_id="inst-fin",
                item_id="f1",
                result="recorded",
                detail={"decision": "Deny", "justification": "left the team"},
            )
        )
    finally:
        await store.close()


@pytest.fixture
async def demo_folder(tmp_path: Path) -> Path:
    """A working folder whose demo store holds the seeded reviews, as the demo server left it."""
    (tmp_path / "data").mkdir()
    await seed(f"sqlite:///{tmp_path / DEMO_DB}")
    return tmp_path


def test_audit_export_in_demo_mode_reads_the_demo_store(demo_folder: Path) -> None:
    before = (demo_folder / DEMO_DB).stat().st_size
    done = run_app(demo_folder, "audit", "export", "--instance", "inst-fin", "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [(r["action"], r["actor"], r["item_id"]) for r in rows] == [("decision", "alex", "f1")]
    # The command read the demo's store: it neither reset it nor opened the real runs' file.
    assert (demo_folder / DEMO_DB).stat().st_size >= before
    assert not (demo_folder / "data" / "bot.db").exists()
    csv_done = run_app(demo_folder, "audit", "export", "--instance", "inst-fin")
    assert csv_done.returncode == 0 and csv_done.stdout.count("\n") == 2


def test_an_unknown_review_is_one_line_and_exit_1(demo_folder: Path) -> None:
    done = run_app(demo_folder, "audit", "export", "--instance", "no-such-review")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "no review instance 'no-such-review'" in done.stderr


def test_without_a_demo_store_the_command_says_so_and_creates_nothing(tmp_path: Path) -> None:
    done = run_app(tmp_path, "audit", "export", "--instance", "inst-fin")
    assert done.returncode == 1
    assert done.stderr == "error: no store at data/demo.db: start the demo first (scripts/run)\n"
    assert not (tmp_path / "data").exists()


def test_with_database_url_the_commands_read_that_store(tmp_path: Path, demo_folder: Path) -> None:
    # Demo mode with an explicit DATABASE_URL: the demo server uses that store, so do they.
    env = cli_env(DATABASE_URL=f"sqlite:///{demo_folder / DEMO_DB}")
    done = run_app(tmp_path, "reviews", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    assert {r["instance_id"] for r in json.loads(done.stdout)} == {
        "inst-eng",
        "inst-fin",
        "inst-old",
    }


def test_reviews_lists_ids_status_stage_due_and_counts(demo_folder: Path) -> None:
    done = run_app(demo_folder, "reviews", "--format", "json")
    assert done.returncode == 0, done.stderr
    reviews = json.loads(done.stdout)
    assert [r["instance_id"] for r in reviews] == ["inst-eng", "inst-fin", "inst-old"]
    eng, fin, old = reviews
    assert eng == {
        "name": "Engineering – two-stage",
        "definition_id": "def-eng",
        "instance_id": "inst-eng",
        "status": "InProgress",
        "stage": "1 of 2",
        "start": (NOW - timedelta(days=3)).isoformat(),
        "due": (NOW + timedelta(days=2)).isoformat(),
        "decided": 1,
        "total": 3,  # the removed item is not counted
        "reviewers_pending": 3,  # e1 has two reviewers, e3 one; megan's e2 is decided
        "pending_by_reviewer": {"alex": 1, "lee": 1, "megan": 1},
    }
    assert (fin["decided"], fin["total"], fin["reviewers_pending"]) == (1, 1, 0)
    assert (old["status"], old["decided"], old["total"]) == ("Completed", 1, 1)

    table = run_app(demo_folder, "reviews")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "REVIEW",
        "DEFINITION",
        "ID",
        "INSTANCE",
        "ID",
        "STATUS",
        "STAGE",
        "DUE",
        "(UTC)",
        "DECIDED",
        "REVIEWERS",
        "PENDING",
    ]
    eng_line = next(line for line in lines if "inst-eng" in line)
    due = (NOW + timedelta(days=2)).strftime("%Y-%m-%d %H:%M")
    for cell in ("Engineering – two-stage", "def-eng", "InProgress", "1 of 2", due, "1/3"):
        assert cell in eng_line
    assert eng_line.split()[-1] == "3"


def test_reviews_on_an_empty_store_says_there_is_none(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()

    async def make() -> None:
        store = await open_store(f"sqlite:///{tmp_path / DEMO_DB}")
        await store.close()

    asyncio.run(make())
    done = run_app(tmp_path, "reviews")
    assert done.returncode == 0
    assert "no review yet" in done.stdout


def test_a_malformed_instance_id_is_refused_before_any_store_is_read(demo_folder: Path) -> None:
    done = run_app(demo_folder, "audit", "export", "--instance", 'x"; rm -rf /')
    assert done.returncode == 2
    assert "must be a review instance id" in done.stderr


async def test_next_waits_only_for_messages_due_now(tmp_path: Path) -> None:
    """The demo prints "Next:" once the first cards are out; a message waiting for someone's
    working hours (hours away) must not hold it back for its whole timeout."""
    settings = replace(Settings(), database_url=f"sqlite:///{tmp_path / 'demo.db'}")
    server = TestServer(create_app(settings, workers=False), host="127.0.0.1", port=0)
    async with TestClient(server) as client:
        app, store = client.app, client.app[STORE]
        tomorrow_morning = datetime.now(UTC) + timedelta(hours=10)
        await store.enqueue_outbox(
            key="escalation-for-the-morning", kind="card", payload={}, not_before=tomorrow_morning
        )
        assert await _queued(app) == 0
        settled = await wait_until_settled(
            cycles_run=lambda: 1, queued=lambda: _queued(app), timeout_s=30
        )
        assert settled
        await store.enqueue_outbox(key="first-card", kind="card", payload={})
        assert await _queued(app) == 1
