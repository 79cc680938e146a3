"""Each reviewer in their own language, end to end on the emulated Microsoft cloud: the real app,
Graph's mailbox settings, signed Teams activities and the emulated Bot Connector.

- A reviewer whose mailbox language is German gets a German card in their mailbox's time zone,
  clicks in a German Teams client, gets a German answer, and the card edited afterwards stays
  German.
- A reviewer whose Teams client runs in Japanese gets Japanese chat replies, commands in
  Japanese work, and their cards answer in Japanese.
- A card edited later keeps the language it was sent in while the tenant default changes, and
  follows the reviewer when their own language changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app import create_app
from bot.notify.delivery import enqueue_review_card
from bot.web.keys import DISCOVERY, OUTBOX, REMINDERS, STORE
from emulator.seeds import demo_id
from tests.bot_harness import BotOnEmulator, bot_on_emulator
from tests.cardtools import card_text, execute_actions

JOHANNA = demo_id("user", "johanna")
ALEX = demo_id("user", "alex")
ROLE_REVIEW = demo_id("review", "user_admin_role")
MEGAN_ITEM = demo_id("decision", f"user_admin_role:{demo_id('user', 'megan')}")


def _cards(harness: BotOnEmulator, user: str) -> list[Any]:
    return [m for m in harness.cloud.connector.messages_to(user) if m.activity.get("attachments")]


def _card(message: Any) -> dict[str, Any]:
    content: dict[str, Any] = message.activity["attachments"][0]["content"]
    return content


def _review_card(harness: BotOnEmulator, user: str, instance: str) -> Any:
    [message] = [
        m
        for m in _cards(harness, user)
        if _card(m).get("refresh", {}).get("action", {}).get("data", {}).get("instanceId")
        == instance
    ]
    return message


async def _texts_to(harness: BotOnEmulator, user: str, after: int) -> list[str]:
    await harness.eventually(
        lambda: len(harness.cloud.connector.messages_to(user)) > after, what="a reply"
    )
    return [str(m.activity.get("text") or "") for m in harness.cloud.connector.messages_to(user)]


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    async with bot_on_emulator(tmp_path) as running:
        yield running


async def test_a_german_mailbox_gets_german_cards_and_german_answers(
    harness: BotOnEmulator,
) -> None:
    mailbox = harness.cloud.tenant.users[JOHANNA].mailbox
    assert mailbox is not None
    mailbox.language = "de-DE"
    mailbox.time_zone = "W. Europe Standard Time"  # Exchange names zones the Windows way
    await harness.app[DISCOVERY].run_once()
    await harness.app[OUTBOX].run_once()

    message = _review_card(harness, JOHANNA, ROLE_REVIEW)
    card = _card(message)
    text = card_text(card)
    assert card["lang"] == "de-DE"
    assert "Zugriffsüberprüfung" in text
    assert "Fällig am" in text
    assert {a["title"] for a in execute_actions(card, "decide")} == {
        "Genehmigen",
        "Verweigern",
        "Weiß nicht",
    }
    assert message.activity["summary"].startswith("Zugriffsüberprüfung: ")
    assert "Approve" not in text and "Due " not in text

    # Johanna reads Teams in German; her click is answered in German.
    harness.teams.set_client_language(JOHANNA, "de-DE", "Europe/Berlin")
    response = await harness.teams.card_action(
        JOHANNA,
        "decide",
        {
            "instanceId": ROLE_REVIEW,
            "itemId": MEGAN_ITEM,
            "decision": "Deny",
            "page": 0,
            "justification": "hat das Team verlassen",
        },
        sso=True,
    )
    answer = response.body
    assert answer["statusCode"] == 200, answer
    answered = answer["value"]
    assert answered["lang"] == "de-DE"
    assert "✗ Verweigert von Ihnen" in card_text(answered)

    # The card in the chat is edited (for Johanna's other devices): still German.
    await harness.app[OUTBOX].run_once()
    edited = _review_card(harness, JOHANNA, ROLE_REVIEW)
    assert edited.update_count >= 1
    assert _card(edited)["lang"] == "de-DE"
    assert "✗ Verweigert von Ihnen" in card_text(_card(edited))


async def test_a_japanese_teams_client_gets_japanese_replies(harness: BotOnEmulator) -> None:
    # The store learns Alex's reviews; no card is sent yet (his chat stays under Teams' limits).
    await harness.app[DISCOVERY].run_once()
    connector = harness.cloud.connector
    await harness.emulator.arun(
        connector.note_app_installed, user_oid=ALEX, user_name="Alex Wilber", installation_id="i1"
    )
    await harness.eventually(lambda: len(connector.messages_to(ALEX)) >= 1, what="the welcome")
    # Alex's mailbox says English (the emulator's default); his Teams client runs in Japanese.
    harness.teams.set_client_language(ALEX, "ja-JP", "Asia/Tokyo")

    before = len(connector.messages_to(ALEX))
    assert (await harness.teams.message(ALEX, "help")).status in (200, 201)
    texts = await _texts_to(harness, ALEX, before)
    assert "**保留中**" in texts[-1] and "**再通知 4h**" in texts[-1]

    before = len(connector.messages_to(ALEX))
    await harness.teams.message(ALEX, "なにか")  # not a command
    texts = await _texts_to(harness, ALEX, before)
    assert texts[-1].startswith("理解できませんでした。")

    # The Japanese command word lists his reviews, in a Japanese card.
    before = len(connector.messages_to(ALEX))
    await harness.teams.message(ALEX, "保留中")
    await _texts_to(harness, ALEX, before)
    pending = _card(connector.messages_to(ALEX)[-1])
    assert pending["lang"] == "ja-JP"
    assert "未完了のアクセス レビュー" in card_text(pending)
    [first, *_] = execute_actions(pending, "open_review")

    # Opening one answers with the review card in Japanese.
    opened = await harness.teams.card_action(ALEX, "open_review", first["data"])
    review = opened.body["value"]
    assert review["lang"] == "ja-JP"
    assert "承認" in {a["title"] for a in execute_actions(review, "decide")}

    # Snoozing in Japanese, "tomorrow" in Japanese, no space needed.
    before = len(connector.messages_to(ALEX))
    await harness.teams.message(ALEX, "再通知明日")
    texts = await _texts_to(harness, ALEX, before)
    assert texts[-1].startswith("リマインダーを一時停止しました。")

    # An invoke the bot cannot read is refused in Japanese too.
    refused = await harness.teams.card_action(ALEX, "no_such_verb", {})
    assert refused.body["value"]["message"] == "このボタンはサポートされていません。"


async def test_an_edited_card_keeps_its_language_until_the_reviewers_own_changes(
    harness: BotOnEmulator, tmp_path: Path
) -> None:
    # Johanna has no mailbox and reads Teams in Korean, which the cards do not speak: her first
    # card is in the tenant's default language, French (times in Seoul's zone).
    harness.cloud.tenant.users[JOHANNA].mailbox = None
    harness.teams.set_client_language(JOHANNA, "ko-KR", "Asia/Seoul")
    french = replace(harness.settings, default_locale="fr-FR")
    from aiohttp.test_utils import TestClient, TestServer

    async def run(settings: Any, *, edit: bool) -> None:
        """A process with ``settings`` polls and sends (after queueing an edit of the card, as
        any change to Johanna's items does)."""
        server = TestServer(create_app(settings, workers=False), host="127.0.0.1", port=0)
        async with TestClient(server) as client:
            await client.app[DISCOVERY].run_once()
            if edit:
                await enqueue_review_card(
                    client.app[STORE],
                    tenant_id=harness.cloud.tenant_id,
                    reviewer_oid=JOHANNA,
                    instance_id=ROLE_REVIEW,
                    edit=True,
                )
            await client.app[OUTBOX].run_once()
            # This process is done sending: the next one may take the delivery lease at once.
            await client.app[STORE].release_lease(
                name="delivery", holder=client.app[OUTBOX].worker_id
            )

    await run(french, edit=False)
    message = _review_card(harness, JOHANNA, ROLE_REVIEW)
    assert _card(message)["lang"] == "fr-FR"
    sent = await harness.app[STORE].get_sent_message(
        reviewer_oid=JOHANNA, instance_id=ROLE_REVIEW, kind="review"
    )
    assert sent is not None and sent.data["locale"] == "fr-FR"
    assert sent.data["localeFrom"] == "default"

    # The operator switches the default to Spanish; the card is edited, still in French
    # (nothing about Johanna changed).
    spanish = replace(harness.settings, default_locale="es-ES")
    await run(spanish, edit=True)
    edited = _review_card(harness, JOHANNA, ROLE_REVIEW)
    assert edited.update_count >= 1
    assert _card(edited)["lang"] == "fr-FR"
    assert "Révision d'accès" in card_text(_card(edited))
    edits_so_far = edited.update_count

    # Johanna gets a mailbox set to Dutch; the reminder pass reads it (for her working hours)
    # and the next edit follows her.
    harness.cloud.tenant.users[JOHANNA].mailbox = replace(
        harness.cloud.tenant.users[ALEX].mailbox, language="nl-NL"
    )
    server = TestServer(create_app(spanish, workers=False), host="127.0.0.1", port=0)
    async with TestClient(server) as client:
        await client.app[REMINDERS].hours_for(JOHANNA)
    people = await harness.app[STORE].get_people(user_oids=[JOHANNA])
    assert people[JOHANNA].locale == "nl-NL"
    await run(spanish, edit=True)
    dutch = _review_card(harness, JOHANNA, ROLE_REVIEW)
    assert dutch.update_count > edits_so_far
    assert _card(dutch)["lang"] == "nl-NL"
    assert "Toegangsbeoordeling" in card_text(_card(dutch))
