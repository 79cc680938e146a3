"""Issue 7: Graph failing after the click — the decision is written once Graph recovers and the
card is edited; killing the process in between does not lose it.

The emulated cloud (demo tenant) runs on a thread here; the bot is a real ``app.py`` process.
Johanna signs in and decides one item while Graph is healthy; then Graph's decision writes
answer 503, she decides another (the card says "Saving…"), the bot is SIGKILLed, Graph recovers,
and a new process on the same SQLite file must finish that write — once — and edit her card.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import httpx

from emulator.faults import FaultRule
from emulator.seeds import demo_id
from emulator.server import EmulatorCloud, EmulatorConfig
from emulator.teams_client import TeamsClient
from emulator.threaded import EmulatorThread
from tests.process.procs import BotProcess, bot_environment, eventually, free_port, on_emulator

JOHANNA = demo_id("user", "johanna")
ROLE_REVIEW = demo_id("review", "user_admin_role")  # demo instance ids equal definition ids
MEGAN_ITEM = demo_id("decision", f"user_admin_role:{demo_id('user', 'megan')}")
DIEGO_ITEM = demo_id("decision", f"user_admin_role:{demo_id('user', 'diego')}")
LEASE_S = 10.0  # what the killed process held is free again after this (procs.bot_environment)


def card_texts(node: object) -> str:
    """Every ``text`` of an Adaptive Card, one per line (what a person reads)."""
    texts: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("text"), str):
                texts.append(value["text"])
            for child in value.values():
                walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    walk(node)
    return "\n".join(texts)


def review_card_message(cloud: EmulatorCloud) -> tuple[str, int, str] | None:
    """Johanna's review card for the role review: (activity id, update count, its text)."""
    for message in cloud.connector.messages_to(JOHANNA):
        for attachment in message.activity.get("attachments") or []:
            content = attachment.get("content") or {}
            data = ((content.get("refresh") or {}).get("action") or {}).get("data") or {}
            if data.get("card") == "review" and data.get("instanceId") == ROLE_REVIEW:
                return message.activity_id, message.update_count, card_texts(content)
    return None


def graph_decision(cloud: EmulatorCloud, item_id: str) -> tuple[str, str | None]:
    """(decision, reviewedBy id) of an item as the emulated Graph holds it."""
    decision = cloud.tenant.instances[ROLE_REVIEW].decisions[item_id]
    return decision.decision, decision.reviewed_by[0] if decision.reviewed_by else None


def successful_patches(cloud: EmulatorCloud, item_id: str) -> int:
    """Decision PATCHes of ``item_id`` that Graph answered with success.

    Requests a fault rule answered never reach Graph's request log; those are counted by
    ``Faults.fired``.
    """
    return sum(
        1
        for method, _version, path, status in cloud.graph.request_log
        if method == "PATCH" and item_id in path and 200 <= status < 300
    )


def answer_card(response: Any) -> dict[str, Any]:
    """The card of an ``adaptiveCard/action`` answer (HTTP 200, invoke status 200)."""
    assert response.status == 200, response.body
    body = response.body
    assert body["statusCode"] == 200, body
    assert body["type"] == "application/vnd.microsoft.card.adaptive", body
    card: dict[str, Any] = body["value"]
    return card


async def test_a_decision_saving_during_a_graph_outage_survives_a_kill(tmp_path: Path) -> None:
    emulator = EmulatorThread(EmulatorConfig(seed="demo"))
    async with emulator as cloud, httpx.AsyncClient() as http:
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        # The same key for both processes: Johanna's cached sign-in is stored encrypted with it.
        token_cache_key = base64.urlsafe_b64encode(os.urandom(32)).decode()

        def start_bot(name: str) -> BotProcess:
            port = free_port()
            env = bot_environment(
                cloud, data_dir, token_cache_key=token_cache_key, port=port, lease_s=LEASE_S
            )
            bot = BotProcess(env, port=port, log_path=tmp_path / f"{name}.log", cwd=tmp_path / name)
            cloud.connector.bot_endpoint = bot.endpoint
            bot.start()
            return bot

        def teams_for(bot: BotProcess) -> TeamsClient:
            return TeamsClient(
                cloud.identity,
                cloud.connector_url,
                bot.endpoint,
                cloud.bot_app_id,
                cloud.tenant_id,
                http,
                conversation_id_for=cloud.connector.conversation_id_for,
            )

        async def card_message() -> tuple[str, int, str] | None:
            found: tuple[str, int, str] | None = await on_emulator(
                emulator, lambda: review_card_message(cloud)
            )
            return found

        first = start_bot("first")
        second: BotProcess | None = None
        try:
            await first.wait_healthy(http)
            # A serving process sets its start-up heap aside from the collector (bot.heap).
            assert await first.frozen_objects(http) > 10_000

            async def card_sent() -> bool:
                return await card_message() is not None

            # Discovery and the outbox of the first process bring Johanna her card.
            await eventually(card_sent, timeout_s=30, what="Johanna's review card")
            teams = teams_for(first)

            # Sign in (SSO → on-behalf-of) with a first decision while Graph is healthy.
            signed_in = await teams.card_action(
                JOHANNA,
                "decide",
                {
                    "instanceId": ROLE_REVIEW,
                    "itemId": DIEGO_ITEM,
                    "decision": "Approve",
                    "page": 0,
                    "justification": "still needs it",
                },
                sso=True,
            )
            answer_card(signed_in)
            assert await on_emulator(emulator, lambda: graph_decision(cloud, DIEGO_ITEM)) == (
                "Approve",
                JOHANNA,
            )

            # Graph's decision writes fail from here on.
            rule_id = cloud.faults.add(
                FaultRule(service="graph", method="PATCH", kind="status", status=503)
            )
            saving = await teams.card_action(
                JOHANNA,
                "decide",
                {
                    "instanceId": ROLE_REVIEW,
                    "itemId": MEGAN_ITEM,
                    "decision": "Deny",
                    "page": 0,
                    "justification": "left the company",
                },
            )
            assert "saving" in card_texts(answer_card(saving)).lower()
            assert cloud.faults.fired(rule_id) >= 1, "the write was never tried"
            assert await on_emulator(emulator, lambda: graph_decision(cloud, MEGAN_ITEM)) == (
                "NotReviewed",
                None,
            )
            before = await card_message()
            assert before is not None
            activity_id, updates_at_kill, _ = before

            first.kill()
            cloud.faults.remove(rule_id)  # Graph recovers while no bot runs
            assert await on_emulator(emulator, lambda: successful_patches(cloud, MEGAN_ITEM)) == 0

            second = start_bot("second")
            await second.wait_healthy(http)

            async def written_and_shown() -> bool:
                if not second.alive():
                    raise AssertionError(f"restarted bot exited:\n{second.log_tail()}")
                decided = await on_emulator(emulator, lambda: graph_decision(cloud, MEGAN_ITEM))
                message = await card_message()
                return (
                    decided == ("Deny", JOHANNA)
                    and message is not None
                    and message[1] > updates_at_kill
                    and "saving" not in message[2].lower()
                )

            async def state() -> str:
                decided = await on_emulator(emulator, lambda: graph_decision(cloud, MEGAN_ITEM))
                message = await card_message()
                return f"Graph has {decided}, card {message and message[:2]}\n{second.log_tail()}"

            # Up to a lease for the killed process's claim, plus the write's own backoff.
            await eventually(
                written_and_shown,
                timeout_s=45,
                what="the decision written and the card edited",
                interval_s=0.1,
                describe=state,
            )
            after = await card_message()
            patches = await on_emulator(emulator, lambda: successful_patches(cloud, MEGAN_ITEM))
            decision = await on_emulator(
                emulator, lambda: cloud.tenant.instances[ROLE_REVIEW].decisions[MEGAN_ITEM]
            )
        finally:
            first.stop()
            if second is not None:
                second.stop()

    assert patches == 1, f"{patches} successful PATCHes of the decision after the recovery"
    assert decision.justification == "left the company"
    assert after is not None and after[0] == activity_id, "the card was sent anew, not edited"
