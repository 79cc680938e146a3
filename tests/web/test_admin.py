"""Admin routes and commands: remind now, audit export; the admin token guards them."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from app import create_app
from bot.clock import DemoClock
from bot.settings import Settings, documented_variables
from bot.store import AuditEvent, InstanceRecord, ItemRecord, SqlStore, open_store
from bot.web.keys import STORE

ROOT = Path(__file__).resolve().parents[2]
TENANT = "11111111-1111-1111-1111-111111111111"
KEY = base64.urlsafe_b64encode(b"k" * 32).decode()


async def _seed(store: SqlStore) -> None:
    now = datetime.now(UTC)
    await store.upsert_instances(
        instances=[
            InstanceRecord(
                instance_id="inst-1",
                definition_id="def-1",
                display_name="Sales =cmd()",
                status="InProgress",
                start_at=now - timedelta(days=1),
                end_at=now + timedelta(days=5),
            )
        ]
    )
    await store.upsert_items(
        items=[
            ItemRecord(instance_id="inst-1", item_id="a"),
            ItemRecord(instance_id="inst-1", item_id="b", decision="Approve"),
        ]
    )
    await store.replace_assignments(instance_id="inst-1", pairs=[("rev-1", "a"), ("rev-2", "b")])
    await store.append_audit(
        event=AuditEvent(
            action="notified",
            actor="bot",
            instance_id="inst-1",
            detail={"recipient": "=HYPERLINK(1)"},
        )
    )


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[TestClient]:
    settings = Settings(
        app_id="00000000-0000-0000-0000-0000000000b0",
        app_password="pw",
        app_tenant_id=TENANT,
        token_cache_key=KEY,
        admin_token="s3cret-admin",
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
    )
    server = TestServer(create_app(settings, workers=False), host="127.0.0.1", port=0)
    async with TestClient(server) as client:
        await _seed(client.app[STORE])
        yield client


async def test_admin_routes_need_the_token(secured: TestClient) -> None:
    assert (await secured.get("/")).status == 401
    assert (await secured.post("/admin/remind?instance=inst-1")).status == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await secured.get("/admin/audit?instance=inst-1", headers=wrong)).status == 401
    ok = {"Authorization": "Bearer s3cret-admin"}
    assert (await secured.get("/", headers=ok)).status == 200
    basic = {"Authorization": "Basic " + base64.b64encode(b"admin:s3cret-admin").decode()}
    assert (await secured.get("/", headers=basic)).status == 200


async def test_remind_now_queues_one_reminder_per_reviewer_with_work(secured: TestClient) -> None:
    ok = {"Authorization": "Bearer s3cret-admin"}
    response = await secured.post("/admin/remind?instance=inst-1", headers=ok)
    body = await response.json()
    assert response.status == 202 and body["queued"] == 1 and body["mode"] == "working_hours"
    store = secured.app[STORE]
    claimed = await store.claim_outbox(worker="t", limit=10, lease_s=10)
    # A request the reminder pass settles in rev-1's working hours (tests/notify/test_reminders_manual.py).
    assert [(m.kind, m.payload["reviewerOid"]) for m in claimed] == [("reminder_request", "rev-1")]
    assert (await secured.post("/admin/remind?instance=nope", headers=ok)).status == 404


async def test_audit_export_csv_and_json(secured: TestClient) -> None:
    ok = {"Authorization": "Bearer s3cret-admin"}
    response = await secured.get("/admin/audit?instance=inst-1&format=csv", headers=ok)
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert rows[0]["action"] == "notified"
    assert rows[0]["recipient"].startswith("'=")  # spreadsheet formulas are neutralised
    as_json = json.loads(
        await (await secured.get("/admin/audit?instance=inst-1&format=json", headers=ok)).text()
    )
    assert as_json[0]["detail"] == {"recipient": "=HYPERLINK(1)"}


async def test_command_line_remind_and_export(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = await open_store(url)
    await _seed(store)
    await store.close()
    # A bot with credentials: the commands work on its store (in demo mode, remind asks the
    # running demo instead, whose clock matters: tests/demo/test_demo_clock.py).
    env = {k: v for k, v in os.environ.items() if k not in documented_variables()}
    env |= {
        "MicrosoftAppId": "00000000-0000-0000-0000-0000000000b0",
        "MicrosoftAppPassword": "pw",
        "MicrosoftAppTenantId": TENANT,
        "TOKEN_CACHE_KEY": KEY,
        "DATABASE_URL": url,
    }
    remind = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "remind", "--instance", "inst-1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert remind.returncode == 0, remind.stderr
    assert "1 reviewer" in remind.stdout
    missing = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "remind", "--instance", "nope"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1 and "no review instance" in missing.stderr
    out = tmp_path / "audit.json"
    export = subprocess.run(
        [
            sys.executable,
            str(ROOT / "app.py"),
            "audit",
            "export",
            "--instance",
            "inst-1",
            "--format",
            "json",
            "--out",
            str(out),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert export.returncode == 0, export.stderr
    rows = json.loads(out.read_text())
    assert [(row["action"], row["actor"]) for row in rows] == [
        ("notified", "bot"),
        ("manual_reminder", "cli"),
    ]
    # In demo mode no store is reminded on the side: with no demo running here, it says so.
    demo_env = {k: v for k, v in env.items() if not k.startswith(("Microsoft", "TOKEN_CACHE"))}
    alone = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "remind", "--instance", "inst-1"],
        cwd=tmp_path,
        env=demo_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert alone.returncode == 1 and "no demo is running in this folder" in alone.stderr


HOSTILE_CELLS = [
    "=1+1",
    "+",
    "-",
    "@",
    "\tx",
    "\rx",
    "-2",
    "@SUM(A1)",
    "",
    "plain",
    'a "quoted", cell',
]


async def test_csv_export_reads_back_cell_for_cell(secured: TestClient) -> None:
    """Every cell of the CSV, read back with the csv module, is the value with a leading ' only
    where a spreadsheet would see a formula; empty cells stay empty."""
    from bot.admin import AUDIT_COLUMNS

    store = secured.app[STORE]
    for value in HOSTILE_CELLS:
        await store.append_audit(
            event=AuditEvent(
                action="decision",
                actor=value,
                instance_id="inst-1",
                item_id=value or None,
                result=value,
                request_id=value or None,
                detail={"recipient": value, "justification": value} if value else {},
            )
        )
    ok = {"Authorization": "Bearer s3cret-admin"}
    as_json = json.loads(
        await (await secured.get("/admin/audit?instance=inst-1&format=json", headers=ok)).text()
    )
    text = await (await secured.get("/admin/audit?instance=inst-1&format=csv", headers=ok)).text()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == list(AUDIT_COLUMNS)
    assert len(rows) == len(as_json) + 1

    def expected(value: object) -> str:
        cell = "" if value is None else value if isinstance(value, str) else str(value)
        if isinstance(value, dict):
            cell = json.dumps(value, sort_keys=True)
        return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") and cell else cell

    for row, source in zip(rows[1:], as_json, strict=True):
        assert row == [expected(source[column]) for column in AUDIT_COLUMNS]
    # The hostile values themselves, spelled out: guarded, and nothing else changed.
    actors = [row[AUDIT_COLUMNS.index("actor")] for row in rows[-len(HOSTILE_CELLS) :]]
    assert actors == [
        "'=1+1",
        "'+",
        "'-",
        "'@",
        "'\tx",
        "'\rx",
        "'-2",
        "'@SUM(A1)",
        "",
        "plain",
        'a "quoted", cell',
    ]
    # Empty cells stay empty (the old guard put a ' into each of them).
    empty = rows[-3]
    assert empty[AUDIT_COLUMNS.index("item_id")] == ""
    assert empty[AUDIT_COLUMNS.index("request_id")] == ""
    assert empty[AUDIT_COLUMNS.index("recipient")] == ""


def test_formula_guard_leaves_empty_and_ordinary_text_alone() -> None:
    from bot.admin import formula_safe

    assert formula_safe("") == ""
    assert formula_safe("Alex Wilber") == "Alex Wilber"
    assert formula_safe("a=b") == "a=b"
    assert formula_safe(7) == 7
    for hostile in ("=1+1", "+", "-", "@", "\t", "\r"):
        assert formula_safe(hostile) == "'" + hostile


@pytest.mark.parametrize(
    "instance",
    [
        'x"; filename="evil.exe',
        "../../etc/passwd",
        "a\r\nSet-Cookie: x=1",
        "inst 1",
        "",
        "x" * 65,
        "ünicode",
        "..",
    ],
)
async def test_audit_refuses_what_is_not_an_instance_id(secured: TestClient, instance: str) -> None:
    ok = {"Authorization": "Bearer s3cret-admin"}
    response = await secured.get("/admin/audit", params={"instance": instance}, headers=ok)
    assert response.status == 400
    assert "Content-Disposition" not in response.headers
    assert "instance" in (await response.json())["error"]


async def test_audit_of_an_unknown_review_is_404_and_a_known_one_names_its_file(
    secured: TestClient,
) -> None:
    ok = {"Authorization": "Bearer s3cret-admin"}
    missing = await secured.get("/admin/audit?instance=no-such-review", headers=ok)
    assert missing.status == 404
    assert "no review instance" in (await missing.json())["error"]
    found = await secured.get("/admin/audit?instance=inst-1&format=json", headers=ok)
    assert found.status == 200
    assert found.headers["Content-Disposition"] == 'attachment; filename="audit-inst-1.json"'


# -- cross-site requests (CSRF) cannot change state ----------------------------------------------

BASIC = {"Authorization": "Basic " + base64.b64encode(b"admin:s3cret-admin").decode()}
BEARER = {"Authorization": "Bearer s3cret-admin"}
# What a browser adds to a request another site made it send (a form, a fetch).
CROSS_SITE = [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "https://attacker.example"},
    {"Origin": "null"},
]


async def test_state_changing_admin_routes_take_only_a_bearer_token(secured: TestClient) -> None:
    # A browser with cached basic credentials sends them anywhere: they open pages, change nothing.
    assert (await secured.get("/", headers=BASIC)).status == 200
    assert (await secured.get("/admin/audit?instance=inst-1", headers=BASIC)).status == 200
    refused = await secured.post("/admin/remind?instance=inst-1&now=true", headers=BASIC)
    assert refused.status == 401 and "Bearer" in (await refused.json())["error"]
    assert await secured.app[STORE].count_outbox(status="pending") == 0
    allowed = await secured.post("/admin/remind?instance=inst-1&now=true", headers=BEARER)
    assert allowed.status == 202


@pytest.mark.parametrize("browser", CROSS_SITE)
async def test_a_cross_site_request_never_changes_state(
    secured: TestClient, browser: dict[str, str]
) -> None:
    response = await secured.post(
        "/admin/remind?instance=inst-1&now=true", headers={**BEARER, **browser}
    )
    assert response.status == 403 and "another site" in (await response.json())["error"]
    assert await secured.app[STORE].count_outbox(status="pending") == 0
    # The page's own requests (and tools that send no such header) go through.
    own_site = {"Sec-Fetch-Site": "same-origin", "Origin": str(secured.make_url("")).rstrip("/")}
    allowed = await secured.post(
        "/admin/remind?instance=inst-1&now=true", headers=BEARER | own_site
    )
    assert allowed.status == 202


@pytest.mark.parametrize("browser", CROSS_SITE)
async def test_another_site_cannot_move_the_demo_clock(
    tmp_path: Path, browser: dict[str, str]
) -> None:
    demo = Settings(database_url=f"sqlite:///{tmp_path / 'demo.db'}")
    clock = DemoClock()
    server = TestServer(create_app(demo, workers=False, clock=clock), host="127.0.0.1", port=0)
    async with TestClient(server) as client:
        refused = await client.post("/admin/demo/clock?advance=P1D", headers=browser)
        assert refused.status == 403 and clock.offset == timedelta(0)
        assert (await client.get("/admin/demo/clock", headers=browser)).status == 200
        moved = await client.post(
            "/admin/demo/clock?advance=P1D", headers={"Sec-Fetch-Site": "same-origin"}
        )
        assert moved.status == 200 and clock.offset >= timedelta(days=1)
