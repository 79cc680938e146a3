"""Principals and resources as Graph really sends them, end to end to the reviewer's card.

``lastUserSignInDateTime`` as ``""`` and as ``null`` (never signed in), as text that is no date,
as a number; resource ``type`` in every casing the docs show; guests whose user principal name is
the ``#EXT#`` form. The card shows each sensibly and the recommendation reasons stay right.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.graph import models as graph_models
from bot.web.keys import DISCOVERY, OUTBOX, STORE
from emulator.seeds import demo_id
from emulator.tenant import Group, ReviewResource, User
from tests.bot_harness import BotOnEmulator, bot_on_emulator
from tests.cardtools import card_text
from tests.reviews.shaping import PrincipalShapes, add_one_time_review

NESTOR, LIDIA, GRADY = demo_id("user", "nestor"), demo_id("user", "lidia"), demo_id("user", "grady")
REVIEW = str(uuid.UUID(int=0x5E, version=4))
OWNERS_REVIEW = str(uuid.UUID(int=0x5F, version=4))
GUEST = str(uuid.UUID(int=0x6001, version=4))
NEVER_EMPTY = str(uuid.UUID(int=0x6002, version=4))
NEVER_NULL = str(uuid.UUID(int=0x6003, version=4))
LONG_AGO = str(uuid.UUID(int=0x6004, version=4))
GARBLED = str(uuid.UUID(int=0x6005, version=4))
NUMBER = str(uuid.UUID(int=0x6006, version=4))
TEAM_GROUP = str(uuid.UUID(int=0x7001, version=4))


def _item(n: int) -> str:
    return str(uuid.UUID(int=0x8000 + n, version=4))


def _user(user_id: str, name: str, upn: str, *, days: int | None, guest: bool = False) -> User:
    now = datetime.now(UTC)
    return User(
        id=user_id,
        display_name=name,
        user_principal_name=upn,
        user_type="Guest" if guest else "Member",
        last_sign_in=None if days is None else now - timedelta(days=days, hours=1),
    )


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    async with bot_on_emulator(tmp_path) as running:
        cloud = running.cloud
        tenant = cloud.tenant
        tenant.add_user(
            _user(
                GUEST,
                "Ada Guest",
                "ada.lovelace_fabrikam.com#EXT#@contoso.onmicrosoft.com",
                days=3,
                guest=True,
            )
        )
        tenant.add_user(_user(NEVER_EMPTY, "Ed Empty", "ed@contoso.test", days=None))
        tenant.add_user(_user(NEVER_NULL, "Nat Null", "nat@contoso.test", days=None))
        tenant.add_user(_user(LONG_AGO, "Lou Longago", "lou@contoso.test", days=45))
        tenant.add_user(_user(GARBLED, "Gus Garbled", "gus@contoso.test", days=None))
        tenant.add_user(_user(NUMBER, "Nia Number", "nia@contoso.test", days=None))
        tenant.add_group(Group(id=TEAM_GROUP, display_name="Team", owner_ids=[GRADY]))
        shapes = PrincipalShapes(cloud)
        shapes[NEVER_EMPTY] = {"lastUserSignInDateTime": ""}
        shapes[GARBLED] = {"lastUserSignInDateTime": "sometime last spring"}
        shapes[NUMBER] = {"lastUserSignInDateTime": 1644600697}
        group = ReviewResource(id=TEAM_GROUP, display_name="Team", type="Group")
        now = datetime.now(UTC)
        add_one_time_review(
            cloud,
            definition_id=REVIEW,
            name="Who still needs Team",
            start=now - timedelta(days=1),
            end=now + timedelta(days=10),
            reviewers=[f"/users/{NESTOR}"],
            fallback_reviewers=[],
            decisions=[
                (_item(1), GUEST, "user", group, "Approve"),
                (_item(2), NEVER_EMPTY, "user", group, "Deny"),
                (_item(3), NEVER_NULL, "user", group, "Deny"),
                (_item(4), LONG_AGO, "user", group, "Deny"),
                (_item(5), GARBLED, "user", group, "Deny"),
                (_item(6), NUMBER, "user", group, "Deny"),
            ],
        )
        yield running


def _card(harness: BotOnEmulator, user: str, instance_id: str) -> dict[str, Any]:
    [card] = [
        m.activity["attachments"][0]["content"]
        for m in harness.cloud.connector.messages_to(user)
        if m.activity.get("attachments")
        and m.activity["attachments"][0]["content"]
        .get("refresh", {})
        .get("action", {})
        .get("data", {})
        .get("instanceId")
        == instance_id
    ]
    return card


def _item_text(card: dict[str, Any], name: str) -> str:
    """The text of the card between one principal's name and the next item (the cards write
    dots in addresses as one-dot leaders, so no client turns them into links)."""
    text = card_text(card).replace("\u2024", ".")
    start = text.index(name)
    following = [text.find(n, start + 1) for n in ("Ada", "Ed ", "Nat", "Lou", "Gus", "Nia")]
    ends = [i for i in following if i > start]
    return text[start : min(ends) if ends else len(text)]


async def test_principals_as_graph_sends_them_are_shown_sensibly(
    harness: BotOnEmulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(graph_models, "_WARNED", set())
    with caplog.at_level(logging.WARNING):
        report = await harness.app[DISCOVERY].run_once()
        again = await harness.app[DISCOVERY].run_once()
    assert report.complete and again.complete, report.errors
    await harness.app[OUTBOX].run_once()
    card = _card(harness, NESTOR, REVIEW)

    guest = _item_text(card, "Ada Guest")
    assert "Guest" in guest and "ada.lovelace@fabrikam.com" in guest
    assert "#EXT#" not in card_text(card)

    for name in ("Ed Empty", "Nat Null"):  # "" and null: never signed in, and said so
        never = _item_text(card, name)
        assert "Last sign-in: never" in never and "never signed in" in never, never

    long_ago = _item_text(card, "Lou Longago")
    assert "no sign-in for 45 days" in long_ago and "never" not in long_ago

    for name in ("Gus Garbled", "Nia Number"):  # unusable: no claim that they never signed in
        unknown = _item_text(card, name)
        assert "never signed in" not in unknown, unknown

    # What could not be read was logged once per kind of problem, over two polls of six items.
    messages = [r.getMessage() for r in caplog.records]
    assert sum("lastUserSignInDateTime" in m and "not a date" in m for m in messages) == 1
    assert sum("lastUserSignInDateTime as int" in m for m in messages) == 1

    stored = {i.item_id: i.data for i in await harness.app[STORE].list_items(instance_id=REVIEW)}
    assert stored[_item(1)]["principal"]["isGuest"] is True
    assert stored[_item(2)]["neverSignedIn"] is True and stored[_item(5)]["neverSignedIn"] is False
    assert stored[_item(4)]["lastSignIn"].startswith(
        str((datetime.now(UTC) - timedelta(days=45, hours=1)).year)
    )
    assert {d["resource"]["type"] for d in stored.values()} == {"group"}


@pytest.mark.parametrize(
    ("resource_type", "resource_id", "reviewer"),
    [
        ("group", TEAM_GROUP, GRADY),  # the docs' examples spell it so
        ("Group", TEAM_GROUP, GRADY),  # the docs' type list spells it so
        ("ServicePrincipal", demo_id("sp", "expense_portal"), LIDIA),
        ("servicePrincipal", demo_id("sp", "expense_portal"), LIDIA),
        ("DirectoryRole", str(uuid.UUID(int=0x9001, version=4)), NESTOR),  # no owners: fallback
        ("AzureRole", str(uuid.UUID(int=0x9002, version=4)), NESTOR),
    ],
)
async def test_owners_of_a_resource_in_any_casing(
    harness: BotOnEmulator, resource_type: str, resource_id: str, reviewer: str
) -> None:
    harness.cloud.tenant.add_group(Group(id=TEAM_GROUP, display_name="Team", owner_ids=[GRADY]))
    resource = ReviewResource(id=resource_id, display_name="The resource", type=resource_type)
    now = datetime.now(UTC)
    add_one_time_review(
        harness.cloud,
        definition_id=OWNERS_REVIEW,
        name="Owners decide",
        start=now - timedelta(days=1),
        end=now + timedelta(days=10),
        reviewers=["./owners"],
        fallback_reviewers=[f"/users/{NESTOR}"],
        decisions=[(_item(20), LONG_AGO, "user", resource, "Approve")],
    )
    report = await harness.app[DISCOVERY].run_once(definition_id=OWNERS_REVIEW)
    assert report.complete, report.errors
    assignments = await harness.app[STORE].list_assignments(instance_id=OWNERS_REVIEW)
    assert [(r, i) for r, _inst, i in assignments] == [(reviewer, _item(20))]
    [item] = await harness.app[STORE].list_items(instance_id=OWNERS_REVIEW)
    assert item.data["resource"]["type"] == graph_models.resource_kind(resource_type)
