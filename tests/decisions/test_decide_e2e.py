"""One-click decisions end to end: signed invokes → SSO/OBO → Graph (emulated) → card answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.web.keys import DECISION_WORKER, DISCOVERY, OUTBOX, REVIEWS_API, STORE
from emulator.faults import FaultRule
from emulator.seeds import demo_id
from tests.bot_harness import BotOnEmulator, bot_on_emulator
from tests.cardtools import card_text

JOHANNA = demo_id("user", "johanna")
PATTI = demo_id("user", "patti")
ROLE_REVIEW = demo_id("review", "user_admin_role")
FINANCE = demo_id("review", "finance")
MEGAN_ITEM = demo_id("decision", f"user_admin_role:{demo_id('user', 'megan')}")
DIEGO_ITEM = demo_id("decision", f"user_admin_role:{demo_id('user', 'diego')}")
ADELE_FINANCE_ITEM = demo_id("decision", f"finance:{demo_id('user', 'adele')}")
ZERO = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    async with bot_on_emulator(tmp_path) as running:
        await running.app[DISCOVERY].run_once()
        await running.app[OUTBOX].run_once()
        yield running


async def graph_decision(harness: BotOnEmulator, instance_id: str, item_id: str) -> dict[str, Any]:
    """The decision as Graph returns it (app-only GET; demo instance ids equal definition ids)."""
    decision = await harness.app[REVIEWS_API].get_decision(instance_id, instance_id, item_id)
    return dict(decision.raw)


def _body(response: Any) -> dict[str, Any]:
    assert response.status == 200, response.body
    return response.body


async def _decide(
    harness: BotOnEmulator,
    user: str,
    item: str,
    decision: str,
    *,
    instance: str = ROLE_REVIEW,
    sso: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    data = {"instanceId": instance, "itemId": item, "decision": decision, "page": 0, **extra}
    return _body(await harness.teams.card_action(user, "decide", data, sso=sso))


async def test_first_click_asks_for_sign_in_then_writes_as_the_reviewer(
    harness: BotOnEmulator,
) -> None:
    first = await _decide(harness, JOHANNA, MEGAN_ITEM, "Deny")
    assert first["statusCode"] == 401
    assert first["type"] == "application/vnd.microsoft.activity.loginRequest"
    login = first["value"]
    assert login["tokenExchangeResource"]["uri"] == f"api://botid-{harness.cloud.bot_app_id}"
    assert login["buttons"] and login["buttons"][0]["type"] == "signin"
    # Nothing was written.
    assert (await graph_decision(harness, ROLE_REVIEW, MEGAN_ITEM))["decision"] == "NotReviewed"

    answer = await _decide(harness, JOHANNA, MEGAN_ITEM, "Deny", sso=True, justification="left")
    assert answer["statusCode"] == 200
    assert answer["type"] == "application/vnd.microsoft.card.adaptive"
    written = await graph_decision(harness, ROLE_REVIEW, MEGAN_ITEM)
    assert written["decision"] == "Deny"
    assert written["justification"] == "left"
    assert written["reviewedBy"]["id"] == JOHANNA
    # The answer is the updated card: the item shows as decided by the clicker.
    assert "by you" in card_text(answer["value"]).lower()
    # The base message is edited too, for the reviewer's other devices.
    await harness.app[OUTBOX].run_once()
    [message] = [
        m for m in harness.cloud.connector.messages_to(JOHANNA) if m.activity.get("attachments")
    ]
    assert message.update_count >= 1
    audit = await harness.app[STORE].list_audit(instance_id=ROLE_REVIEW)
    decision_rows = [a for a in audit if a.action == "decision"]
    assert [(a.actor, a.item_id, a.result, a.detail["decision"]) for a in decision_rows] == [
        (JOHANNA, MEGAN_ITEM, "recorded", "Deny")
    ]


async def test_a_later_click_needs_no_sign_in_even_after_a_restart(
    harness: BotOnEmulator, tmp_path: Path
) -> None:
    await _decide(harness, JOHANNA, MEGAN_ITEM, "Approve", sso=True, justification="ok")
    second = await _decide(harness, JOHANNA, DIEGO_ITEM, "Approve", justification="ok")
    assert second["statusCode"] == 200
    assert (await graph_decision(harness, ROLE_REVIEW, DIEGO_ITEM))["decision"] == "Approve"

    # A new process on the same store (and the same token-cache key) acts without a sign-in.
    from aiohttp.test_utils import TestClient, TestServer

    from app import create_app

    server = TestServer(create_app(harness.settings, workers=False), host="127.0.0.1", port=0)
    async with TestClient(server) as restarted:
        teams = harness.teams_for(str(restarted.make_url("/api/messages")))
        again = await teams.card_action(
            JOHANNA,
            "decide",
            {"instanceId": ROLE_REVIEW, "itemId": DIEGO_ITEM, "decision": "Deny", "page": 0},
        )
        assert again.status == 200 and again.body["statusCode"] == 200
    assert (await graph_decision(harness, ROLE_REVIEW, DIEGO_ITEM))["decision"] == "Deny"


async def test_another_reviewers_item_is_refused_and_nothing_is_written(
    harness: BotOnEmulator,
) -> None:
    # Patti reviews Finance; the role review's items are Johanna's.
    answer = await _decide(harness, PATTI, MEGAN_ITEM, "Approve", sso=True)
    assert answer["statusCode"] == 200  # a card saying why
    assert "not a reviewer" in card_text(answer["value"]).lower()
    assert (await graph_decision(harness, ROLE_REVIEW, MEGAN_ITEM))["decision"] == "NotReviewed"
    # Naming Patti's own instance with Johanna's item is refused as well.
    mixed = await _decide(harness, PATTI, MEGAN_ITEM, "Approve", instance=FINANCE, sso=True)
    assert "not a reviewer" in card_text(mixed["value"]).lower()
    refused = [a for a in await harness.app[STORE].list_audit() if a.action == "decision_refused"]
    assert len(refused) == 2


async def test_another_tenant_is_refused(harness: BotOnEmulator) -> None:
    activity = harness.teams.card_action_activity(
        JOHANNA,
        "decide",
        {"instanceId": ROLE_REVIEW, "itemId": MEGAN_ITEM, "decision": "Deny", "page": 0},
    )
    other = "11111111-2222-3333-4444-555555555555"
    activity["conversation"]["tenantId"] = other
    activity["channelData"]["tenant"]["id"] = other
    answer = _body(await harness.teams.send_activity(activity))
    assert answer["statusCode"] == 200
    assert (await graph_decision(harness, ROLE_REVIEW, MEGAN_ITEM))["decision"] == "NotReviewed"
    assert [
        a.result for a in await harness.app[STORE].list_audit() if a.action == "decision_refused"
    ] == ["wrong_tenant"]


async def test_a_closed_review_is_refused(harness: BotOnEmulator) -> None:
    harness.cloud.tenant.stop_instance(ROLE_REVIEW)
    await harness.app[DISCOVERY].run_once()
    answer = await _decide(harness, JOHANNA, MEGAN_ITEM, "Approve", sso=True)
    assert "ended" in card_text(answer["value"]).lower()
    assert (await graph_decision(harness, ROLE_REVIEW, MEGAN_ITEM))["decision"] == "NotReviewed"


async def test_justification_is_enforced_where_the_review_requires_it(
    harness: BotOnEmulator,
) -> None:
    answer = await _decide(
        harness, PATTI, ADELE_FINANCE_ITEM, "Approve", instance=FINANCE, sso=True
    )
    assert (
        "reason" in card_text(answer["value"]).lower()
        or "justification" in card_text(answer["value"]).lower()
    )
    assert (await graph_decision(harness, FINANCE, ADELE_FINANCE_ITEM))["decision"] == "NotReviewed"
    ok = await _decide(
        harness,
        PATTI,
        ADELE_FINANCE_ITEM,
        "Approve",
        instance=FINANCE,
        sso=True,
        justification="still in finance",
    )
    assert ok["statusCode"] == 200
    assert (await graph_decision(harness, FINANCE, ADELE_FINANCE_ITEM))[
        "justification"
    ] == "still in finance"


@pytest.mark.parametrize(
    ("verb", "data"),
    [
        ("no_such_verb", {}),
        ("decide", {"instanceId": ROLE_REVIEW, "itemId": MEGAN_ITEM, "decision": "Maybe"}),
        ("decide", {"instanceId": "../../etc", "itemId": MEGAN_ITEM, "decision": "Deny"}),
        ("decide", {"instanceId": ROLE_REVIEW, "itemId": ["x"], "decision": "Deny"}),
        ("page", {"instanceId": ROLE_REVIEW, "page": -3}),
    ],
)
async def test_malformed_actions_get_a_400_error(
    harness: BotOnEmulator, verb: str, data: dict[str, Any]
) -> None:
    answer = _body(await harness.teams.card_action(JOHANNA, verb, data, sso=True))
    assert answer["statusCode"] == 400
    assert answer["type"] == "application/vnd.microsoft.error"
    assert (await graph_decision(harness, ROLE_REVIEW, MEGAN_ITEM))["decision"] == "NotReviewed"


async def test_the_same_invoke_delivered_twice_writes_once(harness: BotOnEmulator) -> None:
    activity = harness.teams.card_action_activity(
        JOHANNA,
        "decide",
        {"instanceId": ROLE_REVIEW, "itemId": MEGAN_ITEM, "decision": "Deny", "page": 0},
        sso_token=harness.cloud.identity.issue_sso_token(
            user_oid=JOHANNA, app_id=harness.cloud.bot_app_id
        ),
    )
    first = _body(await harness.teams.send_activity(activity))
    second = _body(await harness.teams.send_activity(activity))
    assert first["statusCode"] == second["statusCode"] == 200
    patches = [
        entry
        for entry in harness.cloud.graph.request_log
        if entry[0] == "PATCH" and MEGAN_ITEM in entry[2]
    ]
    assert len(patches) == 1


async def test_refresh_answers_from_the_store_without_graph(harness: BotOnEmulator) -> None:
    calls_before = len(harness.cloud.graph.request_log)
    answer = _body(
        await harness.teams.card_action(
            JOHANNA,
            "refresh",
            {"card": "review", "instanceId": ROLE_REVIEW, "page": 0},
            trigger="automatic",
        )
    )
    assert (
        answer["statusCode"] == 200 and answer["type"] == "application/vnd.microsoft.card.adaptive"
    )
    assert len(harness.cloud.graph.request_log) == calls_before


async def test_graph_down_after_the_click_is_finished_by_the_worker(harness: BotOnEmulator) -> None:
    # Sign in first (cached token), then take Graph's decision writes down.
    await _decide(harness, JOHANNA, DIEGO_ITEM, "Approve", sso=True, justification="ok")
    rule = harness.cloud.faults.add(
        FaultRule(service="graph", method="PATCH", kind="status", status=503, retry_after_s=(1, 1))
    )
    answer = await _decide(harness, JOHANNA, MEGAN_ITEM, "Deny", justification="gone")
    assert answer["statusCode"] == 200
    assert "saving" in card_text(answer["value"]).lower()
    assert (await graph_decision(harness, ROLE_REVIEW, MEGAN_ITEM))["decision"] == "NotReviewed"

    # The process dies here; a new one (same store) finishes the write once Graph is back.
    harness.cloud.faults.remove(rule)
    from aiohttp.test_utils import TestClient, TestServer

    from app import create_app

    server = TestServer(create_app(harness.settings, workers=False), host="127.0.0.1", port=0)
    async with TestClient(server) as restarted:
        worker = restarted.app[DECISION_WORKER]

        async def written() -> bool:
            await worker.run_once()
            return (await graph_decision(harness, ROLE_REVIEW, MEGAN_ITEM))["decision"] == "Deny"

        deadline = 30.0
        import asyncio

        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        while not await written():
            assert loop.time() < end, "the decision was never written"
            await asyncio.sleep(0.2)  # the write's backoff is a few seconds of real time
        decided = await graph_decision(harness, ROLE_REVIEW, MEGAN_ITEM)
        assert decided["reviewedBy"]["id"] == JOHANNA and decided["justification"] == "gone"
        item = await restarted.app[STORE].get_item(instance_id=ROLE_REVIEW, item_id=MEGAN_ITEM)
        assert item is not None and item.decision == "Deny" and "saving" not in item.data


async def test_action_submit_fallback_reaches_the_same_handlers(harness: BotOnEmulator) -> None:
    # Sign in once through Universal Actions (older clients then reuse the cached token).
    await _decide(harness, JOHANNA, DIEGO_ITEM, "Approve", sso=True, justification="ok")
    [card_message] = [
        m for m in harness.cloud.connector.messages_to(JOHANNA) if m.activity.get("attachments")
    ]
    response = await harness.teams.submit(
        JOHANNA,
        {
            "verb": "decide",
            "instanceId": ROLE_REVIEW,
            "itemId": MEGAN_ITEM,
            "decision": "Deny",
            "page": 0,
        },
        reply_to_id=card_message.activity_id,
    )
    assert response.status in (200, 201)
    assert (await graph_decision(harness, ROLE_REVIEW, MEGAN_ITEM))["decision"] == "Deny"
    await harness.eventually(
        lambda: any(
            m.activity_id == card_message.activity_id and m.update_count >= 1
            for m in harness.cloud.connector.messages_to(JOHANNA)
        ),
        what="the card message updated in place",
    )


async def test_token_exchange_answers_over_http_and_signs_the_reviewer_in(
    harness: BotOnEmulator,
) -> None:
    """``signin/tokenExchange``: malformed → 400, an unusable token → 412 (both with Teams'
    failure body, never a 500); a good one → 200, after which a click needs no sign-in."""
    malformed = harness.teams.base_activity(JOHANNA, "invoke")
    malformed["name"] = "signin/tokenExchange"
    malformed["value"] = {"id": "exchange-1", "connectionName": "sso"}  # no token
    response = await harness.teams.send_activity(malformed)
    assert response.status == 400, response.body
    assert response.body == {
        "id": "exchange-1",
        "connectionName": "sso",
        "failureDetail": "malformed token exchange",
    }

    refused = await harness.teams.token_exchange(JOHANNA, token="not-a-token")
    assert refused.status == 412, refused.body
    assert refused.body["failureDetail"]
    # Nothing was cached by the refused exchange: a click still asks for sign-in.
    assert (await _decide(harness, JOHANNA, DIEGO_ITEM, "Approve"))["statusCode"] == 401

    accepted = await harness.teams.token_exchange(JOHANNA)
    assert accepted.status == 200, accepted.body
    answer = await _decide(harness, JOHANNA, DIEGO_ITEM, "Approve")
    assert answer["statusCode"] == 200
    assert answer["type"] == "application/vnd.microsoft.card.adaptive"
    assert (await graph_decision(harness, ROLE_REVIEW, DIEGO_ITEM))["decision"] == "Approve"


async def test_a_reason_over_the_limit_is_refused_with_the_limit_named(
    harness: BotOnEmulator,
) -> None:
    from bot.reviews.decisions import JUSTIFICATION_MAX_CHARS

    too_long = "x" * (JUSTIFICATION_MAX_CHARS + 1)
    answer = await _decide(harness, JOHANNA, MEGAN_ITEM, "Deny", sso=True, justification=too_long)
    text = card_text(answer["value"]).lower()
    assert answer["statusCode"] == 200
    assert f"at most {JUSTIFICATION_MAX_CHARS} characters" in text
    assert "requires a reason" not in text
    assert (await graph_decision(harness, ROLE_REVIEW, MEGAN_ITEM))["decision"] == "NotReviewed"
    refused = [a for a in await harness.app[STORE].list_audit() if a.action == "decision_refused"]
    assert [a.result for a in refused] == ["justification_too_long"]
    # At the limit it is accepted.
    ok = await _decide(
        harness, JOHANNA, MEGAN_ITEM, "Deny", sso=True, justification="y" * JUSTIFICATION_MAX_CHARS
    )
    assert ok["statusCode"] == 200
    assert (await graph_decision(harness, ROLE_REVIEW, MEGAN_ITEM))["decision"] == "Deny"


async def test_the_answer_card_is_the_card_rendered_afresh(tmp_path: Path) -> None:
    """The click's answer (its reads cut short, item blocks reused, botbuilder's copy skipped)
    is the card the straightforward path builds: the instance and the reviewer's assignments
    and items read one by one (``review_card_view``) and every part rendered anew — clicked in
    three languages and zones, one item after another, so later answers reuse earlier blocks."""
    from datetime import UTC, datetime, timedelta

    from bot.clock import ManualClock
    from bot.notify.views import ReviewerContext, review_card_view
    from cards import render_review_card

    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    async with bot_on_emulator(tmp_path, clock=clock) as harness:
        await harness.app[DISCOVERY].run_once()
        await harness.app[OUTBOX].run_once()
        store = harness.app[STORE]
        rows = await store.list_assignments(instance_id=ROLE_REVIEW, reviewer_oid=JOHANNA)
        items = [item for _r, _i, item in rows]
        assert len(items) >= 2
        # The second click's card shows the first click's item, decided, in another language
        # (in the same zone): a block reused across languages would show up here.
        languages = [("de-DE", "Europe/Berlin"), ("ja-JP", "Europe/Berlin"), ("en-US", "Etc/UTC")]
        clicks = [
            (items[0], "Deny", True),
            (items[1], "Approve", False),
            (items[0], "Approve", False),
        ]
        for (item, decision, sso), (locale, zone) in zip(clicks, languages, strict=True):
            harness.teams.set_client_language(JOHANNA, locale, zone)
            answer = await _decide(harness, JOHANNA, item, decision, sso=sso, justification="ok")
            assert answer["statusCode"] == 200, answer
            card = answer["value"]
            view = await review_card_view(
                store,
                viewer=ReviewerContext(
                    reviewer_oid=JOHANNA,
                    teams_user_id=card["refresh"]["userIds"][0],
                    time_zone=zone,
                    locale=locale,
                ),
                instance_id=ROLE_REVIEW,
                now=clock.now(),
            )
            assert view is not None
            assert card == render_review_card(view, reuse=False)
            assert card["lang"].startswith(locale[:2])
            clock.advance(timedelta(seconds=90))
