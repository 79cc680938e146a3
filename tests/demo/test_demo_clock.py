"""The demo clock: a whole review watched in minutes, moved over HTTP and from the command line.

The demo runs the emulated Microsoft cloud on a thread of its own and shares one ``DemoClock``
with it. ``POST /admin/demo/clock?advance=PT1H`` moves both and runs the reminder pass at once;
the test walks the demo tenant's reviews hour by hour from their first cards to their end,
clicking in Teams as the people of the demo would, and checks what each of them received and
when — in their own working hours (the demo's mailbox settings: 08:00-17:00 in their zone).
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from app import create_app
from bot.clock import DemoClock, iso_duration, parse_advance
from bot.demo import DEMO_STATE_FILE, DemoCloud, start_demo_cloud
from bot.notify.worktime import resolve_zone
from bot.settings import Settings, documented_variables
from bot.web.keys import DISCOVERY, OUTBOX, STORE
from bot.wiring import DemoShortcutRefused
from emulator.seeds import demo_id
from emulator.teams_client import TeamsClient
from tests.cardtools import execute_actions

ROOT = Path(__file__).resolve().parents[2]
ALEX, DIEGO, MEGAN, JOHANNA = (demo_id("user", k) for k in ("alex", "diego", "megan", "johanna"))
PARTNERS, MARKETING, USER_ADMIN = (
    demo_id("review", k) for k in ("partner_portal", "marketing", "user_admin_role")
)
# A Monday, 06:00 UTC. The demo seeds its reviews around the clock's time: the partner portal and
# marketing reviews run from Saturday 5 to Saturday 19 December, 06:00 UTC.
START = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
END = datetime(2026, 12, 19, 6, 0, tzinfo=UTC)
# Diego (Berlin) snoozes marketing for 72 hours on Friday afternoon: past its halfway reminder
# (Monday 08:00 in Berlin) until Monday 16:00 in Berlin.
DIEGO_SNOOZES_AT = datetime(2026, 12, 11, 15, 0, tzinfo=UTC)
DIEGO_SNOOZE_ENDS = datetime(2026, 12, 14, 15, 0, tzinfo=UTC)


@dataclass
class RunningDemo:
    demo: DemoCloud
    client: TestClient
    teams: TeamsClient

    @property
    def app(self) -> Any:
        return self.client.app

    def messages(self, user: str) -> list[Any]:
        return self.demo.cloud.connector.messages_to(user)


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[RunningDemo]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'demo.db'}", port=0)
    demo = start_demo_cloud(
        settings, bot_endpoint="http://127.0.0.1:1/api/messages", clock=DemoClock(START)
    )
    try:
        server = TestServer(
            create_app(demo.settings, microsoft=demo.side, workers=False, clock=demo.clock),
            host="127.0.0.1",
            port=0,
        )
        async with TestClient(server) as client, httpx.AsyncClient() as http:
            demo.cloud.connector.bot_endpoint = str(client.make_url("/api/messages"))
            yield RunningDemo(demo, client, demo.cloud.connector.teams_client(http))
    finally:
        demo.stop()


def _card(message: Any) -> dict[str, Any]:
    attachments = message.activity.get("attachments") or [{}]
    return dict(attachments[0].get("content") or {})


def _data(message: Any) -> dict[str, Any]:
    return dict(_card(message).get("refresh", {}).get("action", {}).get("data", {}))


def _kind(message: Any) -> str:
    summary = str(message.activity.get("summary") or "")
    if summary.startswith("Reminder:"):
        return "reminder"
    if summary.startswith("Access review:"):
        return "review"
    if _data(message).get("card") == "escalation":
        return "escalation"
    return "other"


def _of(running: RunningDemo, user: str, kind: str, instance: str) -> list[Any]:
    return [
        m
        for m in running.messages(user)
        if _kind(m) == kind and _data(m).get("instanceId") == instance
    ]


def _at_work(running: RunningDemo, user: str, moment: datetime) -> bool:
    mailbox = running.demo.cloud.tenant.users[user].mailbox
    assert mailbox is not None
    zone = resolve_zone(mailbox.time_zone)
    assert zone is not None
    local = moment.astimezone(zone)
    return local.weekday() < 5 and time(8) <= local.time() < time(17)


async def _advance(running: RunningDemo, advance: str) -> dict[str, Any]:
    response = await running.client.post(f"/admin/demo/clock?advance={advance}")
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def _approve_all(running: RunningDemo, user: str, instance: str) -> None:
    """``user`` approves every item of their card for ``instance``, one click per item."""
    (card_message,) = _of(running, user, "review", instance)
    for action in execute_actions(_card(card_message), "decide"):
        if action["data"]["decision"] != "Approve":
            continue
        data = {**action["data"], "justification": "Still needed for their role."}
        answer = await running.teams.card_action(user, "decide", data)
        assert answer.status == 200 and answer.body["statusCode"] == 200


@pytest.mark.timeout(600)
async def test_a_whole_review_on_the_demo_clock(running: RunningDemo) -> None:
    app = running.app
    await app[DISCOVERY].run_once()
    await app[OUTBOX].run_once()
    # First cards, to everyone, at the start.
    for user, instance in ((ALEX, PARTNERS), (ALEX, MARKETING), (DIEGO, MARKETING)):
        (first,) = _of(running, user, "review", instance)
        assert first.sent_at - START < timedelta(minutes=5)
    # Johanna finishes her review at once; Alex finishes marketing (not the partner portal).
    await _approve_all(running, JOHANNA, USER_ADMIN)
    await _approve_all(running, ALEX, MARKETING)
    await app[OUTBOX].run_once()

    nudged_at: datetime | None = None
    diego_snoozed = False
    step = 0
    while running.demo.clock.now() < END + timedelta(hours=2):
        answer = await _advance(running, "PT1H")
        assert answer["reminderPass"] == "ran"
        now = datetime.fromisoformat(answer["now"])
        step += 1
        if step % 6 == 0:
            await app[DISCOVERY].run_once()
        if not diego_snoozed and now >= DIEGO_SNOOZES_AT:
            snooze = await running.teams.card_action(
                DIEGO, "snooze", {"instanceId": MARKETING, "until": "72h"}
            )
            assert snooze.body["statusCode"] == 200
            diego_snoozed = True
        escalation = [
            m for m in _of(running, MEGAN, "escalation", PARTNERS) if _data(m)["reviewerId"] == ALEX
        ]
        if escalation and nudged_at is None:
            (nudge,) = execute_actions(_card(escalation[0]), "nudge")
            for _ in range(2):  # a double click: one reminder
                pressed = await running.teams.card_action(MEGAN, "nudge", nudge["data"])
                assert pressed.body["statusCode"] == 200
            nudged_at = now
        await app[OUTBOX].run_once()

    # Everyone heard from the bot only in their own working hours.
    users = {ALEX, DIEGO, MEGAN, JOHANNA} | set(running.demo.cloud.tenant.users)
    for user in users:
        for message in running.messages(user):
            if _kind(message) in ("reminder", "escalation"):
                assert _at_work(running, user, message.sent_at), (user, message.sent_at)

    # Only those still pending were reminded.
    assert _of(running, JOHANNA, "reminder", USER_ADMIN) == []
    assert _of(running, ALEX, "reminder", MARKETING) == []

    # Alex never acts on the partner portal: halfway (Monday), end-3wd (Tuesday), the nudge
    # (Wednesday), end-1wd (Thursday), the last day (Friday) — each at 08:00 in New York but
    # the nudge, and each once.
    alex = [m.sent_at for m in _of(running, ALEX, "reminder", PARTNERS)]
    assert [m.date().isoformat() for m in alex] == [
        "2026-12-14",
        "2026-12-15",
        "2026-12-16",
        "2026-12-17",
        "2026-12-18",
    ]
    assert nudged_at is not None and alex[2] - nudged_at < timedelta(hours=2)
    for day in (0, 1, 3, 4):
        assert alex[day].astimezone(ZoneInfo("America/New_York")).hour == 8
    assert all(sent < END for sent in alex)

    # Diego's snooze kept the halfway reminder away; it came when the snooze ended.
    diego = [m.sent_at for m in _of(running, DIEGO, "reminder", MARKETING)]
    assert not [sent for sent in diego if DIEGO_SNOOZES_AT <= sent < DIEGO_SNOOZE_ENDS]
    assert DIEGO_SNOOZE_ENDS <= diego[0] < DIEGO_SNOOZE_ENDS + timedelta(hours=1)

    # Megan heard about Alex once, at 08:00 in Seattle (Alex's 11:00), not at Alex's 08:00.
    (escalation,) = [
        m for m in _of(running, MEGAN, "escalation", PARTNERS) if _data(m)["reviewerId"] == ALEX
    ]
    assert escalation.sent_at.astimezone(ZoneInfo("America/Los_Angeles")).hour == 8

    # The audit export tells the partner portal's story, step by step, in order.
    response = await running.client.get(f"/admin/audit?instance={PARTNERS}&format=json")
    assert response.status == 200
    rows = await response.json()
    story = [
        (row["action"], row["recipient"], row["detail"].get("kind") or row["detail"].get("point"))
        for row in rows
        if row["action"] in ("notified", "reminder_queued", "escalation_queued", "nudge")
        and (row["recipient"] in (ALEX, MEGAN))
    ]
    assert story == [
        ("notified", ALEX, "review"),
        ("reminder_queued", ALEX, "halfway"),
        ("notified", ALEX, "reminder"),
        ("reminder_queued", ALEX, "end-3wd"),
        ("notified", ALEX, "reminder"),
        ("escalation_queued", ALEX, "end-2wd"),
        ("notified", MEGAN, "escalation"),
        ("nudge", ALEX, None),
        ("reminder_queued", ALEX, "nudge"),
        ("notified", ALEX, "reminder"),
        ("reminder_queued", ALEX, "end-1wd"),
        ("notified", ALEX, "reminder"),
        ("reminder_queued", ALEX, "last-day"),
        ("notified", ALEX, "reminder"),
    ]
    stamps = [row["at"] for row in rows]
    assert stamps == sorted(stamps)
    marketing = await (
        await running.client.get(f"/admin/audit?instance={MARKETING}&format=json")
    ).json()
    diego_story = [
        "snooze" if row["action"] == "snooze" else row["detail"]["point"].split("-20")[0]
        for row in marketing
        if (row["action"] == "snooze" and row["actor"] == DIEGO)
        or (row["action"] == "reminder_queued" and row["recipient"] == DIEGO)
    ]
    assert diego_story == ["snooze", "snooze", "end-3wd", "end-1wd", "last-day"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in documented_variables()}
    env.update(extra)
    return env


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


async def _app_py(*args: str, env: dict[str, str], cwd: Path) -> Ran:
    """``python app.py ARGS`` in a child process, awaited: the demo it calls runs on this loop."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "app.py"),
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=100)
    assert process.returncode is not None
    return Ran(process.returncode, stdout.decode(), stderr.decode())


@pytest.mark.timeout(300)  # six child processes of app.py on a shared, loaded machine
async def test_the_command_line_reaches_the_running_demo(tmp_path: Path) -> None:
    # As `python app.py serve --port 0` does: the socket first (any port, on 127.0.0.2 as HOST
    # could say), then the demo, whose state file names the endpoint the commands must use.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.2", 0))
    sock.listen(16)
    endpoint = f"http://127.0.0.2:{sock.getsockname()[1]}/api/messages"
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'demo.db'}", port=0)
    # (In a thread, as the command line starts it before its event loop: the state file's
    # tokens are fetched with a loop of its own.)
    demo = await asyncio.to_thread(
        start_demo_cloud, settings, bot_endpoint=endpoint, state_file=tmp_path / DEMO_STATE_FILE
    )
    runner: web.AppRunner | None = None
    try:
        # The demo as `python app.py` runs it: background loops included, on a real port.
        app = create_app(demo.settings, microsoft=demo.side, clock=demo.clock)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        # PORT names no demo: the commands must find it from the state file.
        env = _env(PORT="1", DATABASE_URL=demo.settings.database_url)
        store = app[STORE]
        deadline = datetime.now(UTC) + timedelta(seconds=60)
        while not await store.list_assignments(instance_id=MARKETING):
            assert datetime.now(UTC) < deadline, "the demo never discovered its reviews"
            await _wait_a_little()
        # Remind-now from the command line goes to the running demo's store and clock.
        remind = await _app_py("remind", "--instance", MARKETING, "--now", env=env, cwd=tmp_path)
        assert remind.returncode == 0, remind.stderr
        assert "queued a reminder for 3 reviewer(s), to be sent now" in remind.stdout
        again = await _app_py("remind", "--instance", MARKETING, env=env, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert "queued no reminder" in again.stdout and "by cli" in again.stdout
        actors = [a.actor for a in await store.list_audit(actions=["manual_reminder"])]
        assert actors == ["cli", "cli"]
        # Another store than the running demo's is refused rather than reminded on the side.
        elsewhere = await _app_py(
            "remind",
            "--instance",
            MARKETING,
            env=_env(DATABASE_URL=f"sqlite:///{tmp_path / 'other.db'}"),
            cwd=tmp_path,
        )
        assert elsewhere.returncode == 1 and "uses the store" in elsewhere.stderr

        before = demo.clock.now()
        moved = await _app_py("demo", "clock", "+13d", env=env, cwd=tmp_path)
        assert moved.returncode == 0, moved.stderr
        assert "demo clock moved forward P13D" in moved.stdout
        assert "reminder pass: ran" in moved.stdout
        assert demo.clock.now() - before >= timedelta(days=13)
        # The emulated cloud moved too: its partner portal review has ended...
        tenant = demo.cloud.tenant
        assert tenant.instance_status(tenant.instances[PARTNERS]) == "Completed"
        # ...and the poll the move asked for tells the bot.
        deadline = datetime.now(UTC) + timedelta(seconds=60)
        while True:
            instance = await store.get_instance(instance_id=PARTNERS)
            if instance is not None and instance.status == "Completed":
                break
            assert datetime.now(UTC) < deadline, "the demo never polled after the move"
            await _wait_a_little()

        shown = await _app_py("demo", "clock", env=env, cwd=tmp_path)
        assert shown.returncode == 0 and "ahead of the wall clock" in shown.stdout
        ended = await _app_py("remind", "--instance", MARKETING, env=env, cwd=tmp_path)
        assert ended.returncode == 1 and "not in progress" in ended.stderr
        bad = await _app_py("demo", "clock", "+3x", env=env, cwd=tmp_path)
        assert bad.returncode == 2 and "is not a duration" in bad.stderr
        huge = await _app_py("demo", "clock", "P9999999999999999999W", env=env, cwd=tmp_path)
        assert huge.returncode == 2 and huge.stderr.strip().splitlines() == [
            "error: move the demo clock at most 90 days at a time"
        ]
    finally:
        if runner is not None:
            await runner.cleanup()
        sock.close()
        demo.stop()
    nobody = await _app_py("demo", "clock", "+1d", env=_env(), cwd=tmp_path)
    assert nobody.returncode == 1 and "no demo is running in this folder" in nobody.stderr


async def _wait_a_little() -> None:
    await asyncio.sleep(0.2)  # re-check; the poller runs on its own tick


async def test_the_demo_clock_is_refused_with_real_credentials(tmp_path: Path) -> None:
    credentials = {
        "MicrosoftAppId": "00000000-0000-0000-0000-0000000000b0",
        "MicrosoftAppPassword": "not-a-real-secret",
        "MicrosoftAppType": "SingleTenant",
        "MicrosoftAppTenantId": "11111111-1111-1111-1111-111111111111",
        "TOKEN_CACHE_KEY": base64.urlsafe_b64encode(b"k" * 32).decode(),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
    }
    refused = await _app_py("demo", "clock", "+3d", env=_env(**credentials), cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: the demo clock is refused: MicrosoftAppId is set, so this is not the demo"
    ]
    assert refused.stdout == ""

    real = Settings(
        app_id=credentials["MicrosoftAppId"],
        app_password=credentials["MicrosoftAppPassword"],
        app_type="SingleTenant",
        app_tenant_id=credentials["MicrosoftAppTenantId"],
        token_cache_key=credentials["TOKEN_CACHE_KEY"],
        admin_token="admin",
        database_url=credentials["DATABASE_URL"],
    )
    with pytest.raises(DemoShortcutRefused):
        create_app(real, workers=False, clock=DemoClock())
    server = TestServer(create_app(real, workers=False), host="127.0.0.1", port=0)
    async with TestClient(server) as client:
        for method in ("GET", "POST"):
            response = await client.request(
                method,
                "/admin/demo/clock?advance=P3D",
                headers={"Authorization": "Bearer admin"},
            )
            assert response.status == 403
            assert "MicrosoftAppId is set" in (await response.json())["error"]

    # A demo-mode app without the demo's clock (as tests build it) says so; bad input is a 400.
    demo_mode = replace(Settings(), database_url=f"sqlite:///{tmp_path / 'demo.db'}")
    server = TestServer(create_app(demo_mode, workers=False), host="127.0.0.1", port=0)
    async with TestClient(server) as client:
        assert (await client.post("/admin/demo/clock?advance=P3D")).status == 409
    server = TestServer(
        create_app(demo_mode, workers=False, clock=DemoClock()), host="127.0.0.1", port=0
    )
    async with TestClient(server) as client:
        for advance in ("", "P0D", "-P1D", "P1Y", "P100D", "3 days", "P9999999999999999999W"):
            response = await client.post(f"/admin/demo/clock?advance={advance}")
            assert response.status == 400, advance
            assert (await response.json())["error"].startswith("advance:")
        shown = await (await client.get("/admin/demo/clock")).json()
        assert shown["offset"] == "PT0S"


def test_the_demo_clock_flows_and_only_moves_forward() -> None:
    wall = [datetime(2026, 1, 1, 12, 0, tzinfo=UTC)]
    clock = DemoClock(START, wall=lambda: wall[0])
    assert clock.now() == START
    wall[0] += timedelta(seconds=90)  # real time passes: so does the demo's
    assert clock.now() == START + timedelta(seconds=90)
    assert clock.advance(timedelta(days=3)) == START + timedelta(days=3, seconds=90)
    assert clock.offset == START - datetime(2026, 1, 1, 12, 0, tzinfo=UTC) + timedelta(days=3)
    for wrong in (timedelta(0), timedelta(hours=-1), timedelta(days=91)):
        with pytest.raises(ValueError):
            clock.advance(wrong)
    with pytest.raises(ValueError):
        DemoClock(datetime(2026, 12, 7, 6, 0))  # naive


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P3D", timedelta(days=3)),
        ("+3d", timedelta(days=3)),
        ("PT4H", timedelta(hours=4)),
        ("8h", timedelta(hours=8)),
        ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("P1W", timedelta(weeks=1)),
        ("90m", timedelta(minutes=90)),
    ],
)
def test_advance_takes_iso_durations_and_the_shorthand(text: str, expected: timedelta) -> None:
    assert parse_advance(text) == expected
    assert parse_advance(iso_duration(expected)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "P",
        "PT",
        "P0D",
        "-3d",
        "P1Y",
        "P2M",
        "P91D",
        "3 days",
        "P9999999999999999999W",
        "+99999999999999999999d",
        "PT99999999999999999999S",
    ],
)
def test_advance_refuses_anything_else_with_one_line(text: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_advance(text)
    assert "\n" not in str(refused.value)
