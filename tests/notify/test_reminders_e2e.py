"""A simulated two-week review on the emulator: reminders and escalations, clocks moved in steps.

The emulator and the bot share a manual clock that moves two hours a step for fifteen days.
Discovery runs every six hours, the reminder pass and the outbox every step, and the process is
restarted half-way (same store) to prove that nothing is sent twice.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from contextlib import AsyncExitStack
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient, TestServer

from app import create_app
from bot.admin import export_audit
from bot.clock import ManualClock as BotClock
from bot.notify.schedule import plan
from bot.teams.actions import ActionContext
from bot.web.keys import ACTIONS, DISCOVERY, OUTBOX, REMINDERS, STORE
from emulator.clock import ManualClock as EmulatorClock
from emulator.seeds import demo_id
from emulator.server import EmulatorConfig
from emulator.tenant import MailboxSettings
from tests.bot_harness import bot_on_emulator

START = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)  # a Monday morning
STEP = timedelta(hours=2)
DAYS = 15

JOHANNA, ALEX, LIDIA, DIEGO, MEGAN, PATTI = (
    demo_id("user", k) for k in ("johanna", "alex", "lidia", "diego", "megan", "patti")
)
ROLE, PARTNERS, EXPENSES, MARKETING = (
    demo_id("review", k)
    for k in ("user_admin_role", "partner_portal", "expense_portal", "marketing")
)


class TwoClocks:
    """The emulator's and the bot's clocks, moved together."""

    def __init__(self) -> None:
        self.emulator = EmulatorClock(START)
        self.bot = BotClock(START)

    def now(self) -> datetime:
        return self.bot.now()

    def advance(self, delta: timedelta) -> None:
        self.emulator.advance(delta)
        self.bot.advance(delta)


def _summary(message: Any) -> str:
    return str(message.activity.get("summary") or "")


def _refresh_data(message: Any) -> dict[str, Any]:
    card = message.activity["attachments"][0]["content"]
    return dict(card.get("refresh", {}).get("action", {}).get("data", {}))


def _instance_of(message: Any) -> str | None:
    return _refresh_data(message).get("instanceId")


async def test_two_weeks_of_reminders_and_escalations(tmp_path: Path) -> None:
    clocks = TwoClocks()
    config = EmulatorConfig(seed="demo", clock=clocks.emulator)
    async with (
        AsyncExitStack() as exits,
        bot_on_emulator(
            tmp_path, config=config, clock=clocks.bot, escalation_fallback_user=PATTI
        ) as harness,
    ):
        tenant = harness.cloud.tenant
        # Lidia works in Brisbane (UTC+10 all year), 9 to 17.
        tenant.users[LIDIA].mailbox = MailboxSettings(
            time_zone="E. Australia Standard Time",
            start_time="09:00:00.0000000",
            end_time="17:00:00.0000000",
        )
        app = harness.app
        diego_snoozed: tuple[datetime, datetime] | None = None
        johanna_done_at: datetime | None = None

        for step in range(DAYS * 12):
            now = clocks.now()
            if step == 12 * 7:
                # Half-way the process restarts on the same store.
                app = await _restart(harness, clocks.bot, exits)
            if step % 3 == 0:
                await app[DISCOVERY].run_once()
            if step == 12 * 2 and johanna_done_at is None:
                for principal in ("megan", "diego"):
                    item = demo_id("decision", f"user_admin_role:{demo_id('user', principal)}")
                    tenant.record_decision(ROLE, item, "Approve", JOHANNA, "still needed")
                johanna_done_at = now
                await app[DISCOVERY].run_once()
            if step == 12 + 2 and diego_snoozed is None:
                context = ActionContext(
                    tenant_id=harness.cloud.tenant_id,
                    actor_oid=DIEGO,
                    actor_teams_id=f"8:orgid:{DIEGO}",
                    actor_name="Diego Siciliani",
                    verb="snooze",
                    data={},
                )
                until = await app[ACTIONS].snooze(context, MARKETING, "tomorrow_0900")
                assert isinstance(until, datetime) and until > now
                diego_snoozed = (now, until)
            await app[REMINDERS].run_once()
            await app[OUTBOX].run_once()
            clocks.advance(STEP)

        connector = harness.cloud.connector
        reminders: dict[str, list[Any]] = defaultdict(list)
        escalations: dict[str, list[Any]] = defaultdict(list)
        for user in list(tenant.users):
            for message in connector.messages_to(user):
                if _summary(message).startswith("Reminder:"):
                    reminders[user].append(message)
                elif _summary(message) == "A review needs attention":
                    escalations[user].append(message)

        # Johanna finished on day 2: nothing for that review afterwards.
        assert johanna_done_at is not None
        late = [
            m for m in reminders[JOHANNA] if _instance_of(m) == ROLE and m.sent_at > johanna_done_at
        ]
        assert late == []

        # Alex never acts on the partner portal: every reminder point after assignment, each once,
        # sent at the first step after it fell due.
        store = app[STORE]
        instance = await store.get_instance(instance_id=PARTNERS)
        assert (
            instance is not None and instance.end_at is not None and instance.start_at is not None
        )
        hours = await app[REMINDERS].hours_for(ALEX)
        policy = app[REMINDERS].schedule.policy_for(instance.definition_id, instance.display_name)
        assigned = await store.first_assigned_at(instance_id=PARTNERS, reviewer_oid=ALEX)
        assert assigned is not None
        expected = [
            slot.send_at
            for slot in plan(
                policy=policy,
                hours=hours,
                instance_start=instance.start_at,
                instance_end=instance.end_at,
                assigned_at=assigned,
            )
            if slot.kind == "reminder" and slot.point != "assigned"
        ]
        sent = sorted(m.sent_at for m in reminders[ALEX] if _instance_of(m) == PARTNERS)
        assert len(sent) == len(expected) >= 3
        for planned, actual in zip(sorted(expected), sent, strict=True):
            assert planned <= actual < planned + STEP

        # Alex's manager (Megan) is told once per review Alex still had pending at the point.
        told = Counter(
            (_refresh_data(m).get("reviewerId"), _instance_of(m)) for m in escalations[MEGAN]
        )
        about_alex = {instance: n for (who, instance), n in told.items() if who == ALEX}
        assert PARTNERS in about_alex and all(count == 1 for count in told.values())

        # Megan has no manager and is the reviews' fallback herself: the configured address.
        audit = await store.list_audit(actions=["escalation_queued", "escalation_undeliverable"])
        megan_rows = [a for a in audit if a.detail.get("reviewer") == MEGAN]
        assert megan_rows and all(a.detail["recipients"] == [PATTI] for a in megan_rows)
        assert escalations[PATTI]

        # Lidia hears from the bot only inside her working hours in Brisbane.
        brisbane = ZoneInfo("Australia/Brisbane")
        assert reminders[LIDIA]
        for message in reminders[LIDIA]:
            local = message.sent_at.astimezone(brisbane)
            assert local.weekday() < 5 and time(9) <= local.time() < time(17), local

        # Diego's snooze kept his marketing reminders away until it ended.
        assert diego_snoozed is not None
        start, end = diego_snoozed
        assert not [
            m for m in reminders[DIEGO] if _instance_of(m) == MARKETING and start <= m.sent_at < end
        ]

        # Exactly once: every reminder slot was queued once, across the restart.
        queued = [
            (a.detail["recipient"], a.instance_id, a.detail["point"])
            for a in await store.list_audit(actions=["reminder_queued"])
        ]
        assert len(queued) == len(set(queued))
        slots = Counter(
            (user, _instance_of(m), m.sent_at) for user, ms in reminders.items() for m in ms
        )
        assert all(count == 1 for count in slots.values())

        # The audit export has every message with time, recipient and kind.
        notified = await store.list_audit(actions=["notified"])
        kinds = Counter(str(a.detail.get("kind")) for a in notified)
        assert kinds["reminder"] == sum(len(v) for v in reminders.values())
        assert kinds["escalation"] == sum(len(v) for v in escalations.values())
        exported = list(
            csv.DictReader(io.StringIO(await export_audit(store, instance_id=PARTNERS, fmt="csv")))
        )
        alex_reminders = [
            row
            for row in exported
            if row["action"] == "notified"
            and row["recipient"] == ALEX
            and '"kind": "reminder"' in row["detail"]
        ]
        assert len(alex_reminders) == len(sent)
        assert all(row["at"] and row["result"] == "sent" for row in alex_reminders)


async def _restart(harness: Any, clock: BotClock, exits: AsyncExitStack) -> Any:
    """A new process on the same store; the old one's state in memory is gone."""
    server = TestServer(
        create_app(harness.settings, workers=False, clock=clock), host="127.0.0.1", port=0
    )
    client = await exits.enter_async_context(TestClient(server))
    return client.app
