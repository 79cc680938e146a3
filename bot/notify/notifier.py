"""Turning discovery's domain events into queued card messages."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from bot.graph import TeamsAppsApi
from bot.notify.delivery import enqueue_review_card, review_card_message
from bot.reviews.events import (
    Assigned,
    DomainEvent,
    InstanceEnded,
    ItemDecidedElsewhere,
    ReviewerDone,
)
from bot.store import Store

__all__ = ["GraphProvisioner", "ReviewNotifier"]

log = logging.getLogger(__name__)


class ReviewNotifier:
    """Discovery event handler: new work → a new card; any other change → edit the sent card."""

    def __init__(
        self, *, store: Store, tenant_id: str, wake: Callable[[], None] | None = None
    ) -> None:
        self._store = store
        self._tenant_id = tenant_id
        self._wake = wake

    async def handle_batch(self, events: Sequence[DomainEvent]) -> None:
        """Many events at once (one discovery pass over an instance): new work is queued with
        one look-up and one insert per instance instead of two store calls per reviewer."""
        assigned: dict[str, list[str]] = {}
        for event in events:
            if isinstance(event, Assigned):
                assigned.setdefault(event.instance_id, []).append(event.reviewer_oid)
            else:
                await self._one(event)
        for instance_id, reviewers in assigned.items():
            sent = await self._store.sent_recipients(instance_id=instance_id, kind="review")
            await self._store.enqueue_outbox_many(
                messages=[
                    review_card_message(
                        tenant_id=self._tenant_id,
                        reviewer_oid=reviewer,
                        instance_id=instance_id,
                        edit=reviewer in sent,
                    )
                    for reviewer in reviewers
                ]
            )
        if events and self._wake is not None:
            self._wake()

    async def __call__(self, event: DomainEvent) -> None:
        await self._one(event)
        if self._wake is not None:
            self._wake()

    async def _one(self, event: DomainEvent) -> None:
        match event:
            case Assigned():
                await self._card(event.reviewer_oid, event.instance_id)
            case ReviewerDone():
                await self._edit(event.reviewer_oid, event.instance_id)
            case ItemDecidedElsewhere():
                for reviewer, _instance, item in await self._store.list_assignments(
                    instance_id=event.instance_id
                ):
                    if item == event.item_id:
                        await self._edit(reviewer, event.instance_id)
            case InstanceEnded():
                reviewers = {
                    r
                    for r, _i, _item in await self._store.list_assignments(
                        instance_id=event.instance_id
                    )
                }
                for reviewer in sorted(reviewers):
                    await self._edit(reviewer, event.instance_id)

    async def items_changed(self, instance_id: str, item_ids: Sequence[str]) -> None:
        """Items changed through the bot: edit every sent card that shows one of them."""
        reviewers = {
            reviewer
            for reviewer, _instance, _item in await self._store.list_assignments(
                instance_id=instance_id, item_ids=item_ids
            )
        }
        for reviewer in sorted(reviewers):
            await self._edit(reviewer, instance_id)
        if self._wake is not None:
            self._wake()

    async def ensure_first_cards(self, instance_id: str, reviewers: Sequence[str]) -> None:
        """Queue the first card of reviewers who have work here but were never sent one.

        The key of a first card is fixed, so this never queues a second one.
        """
        queued = False
        for reviewer in reviewers:
            sent = await self._store.get_sent_message(
                reviewer_oid=reviewer, instance_id=instance_id, kind="review"
            )
            if sent is None:
                queued |= await enqueue_review_card(
                    self._store,
                    tenant_id=self._tenant_id,
                    reviewer_oid=reviewer,
                    instance_id=instance_id,
                    edit=False,
                )
        if queued and self._wake is not None:
            self._wake()

    async def conversation_changed(
        self, tenant_id: str, reviewer: str, previous: Mapping[str, Any] | None = None
    ) -> None:
        """The reviewer reached the bot from a chat id other than the one we knew (``previous``,
        the reference stored before; ``None`` if there was none).

        A new chat id alone does not mean a new chat: Teams names one 1:1 chat in more than one
        way, and an invoke from an old card carries whatever id that card's chat had. So, within
        the same Bot Connector service, the open review cards are *edited* where they are; only
        if their chat answers that it is gone (or closed to the bot) does the outbox send the card
        again, once, into the chat the reviewer uses now (``OutboxWorker``, review edits). A chat
        reached through another service (another host: another client, such as Agents Playground
        beside the emulated Teams) is another chat, which the old one's cards cannot reach: they
        are sent there, once per chat.
        """
        reference = await self._store.get_conversation_reference(
            tenant_id=tenant_id, user_oid=reviewer
        )
        conversation_id = str((reference or {}).get("conversation", {}).get("id") or "")
        other_service = previous is not None and _service_host(previous) != _service_host(reference)
        instances = {
            i for _r, i, _item in await self._store.list_assignments(reviewer_oid=reviewer)
        }
        for instance_id in sorted(instances):
            instance = await self._store.get_instance(instance_id=instance_id)
            if instance is None or instance.status != "InProgress":
                continue
            sent = await self._store.get_sent_message(
                reviewer_oid=reviewer, instance_id=instance_id, kind="review"
            )
            if sent is not None and sent.conversation_id != conversation_id:
                await enqueue_review_card(
                    self._store,
                    tenant_id=tenant_id,
                    reviewer_oid=reviewer,
                    instance_id=instance_id,
                    edit=not other_service,
                    sequence=conversation_id,
                )
        if self._wake is not None:
            self._wake()

    async def _card(self, reviewer: str, instance_id: str) -> None:
        sent = await self._store.get_sent_message(
            reviewer_oid=reviewer, instance_id=instance_id, kind="review"
        )
        if sent is None:
            await enqueue_review_card(
                self._store,
                tenant_id=self._tenant_id,
                reviewer_oid=reviewer,
                instance_id=instance_id,
                edit=False,
            )
        else:
            await self._edit(reviewer, instance_id)

    async def _edit(self, reviewer: str, instance_id: str) -> None:
        sent = await self._store.get_sent_message(
            reviewer_oid=reviewer, instance_id=instance_id, kind="review"
        )
        if sent is not None:
            await enqueue_review_card(
                self._store,
                tenant_id=self._tenant_id,
                reviewer_oid=reviewer,
                instance_id=instance_id,
                edit=True,
            )


def _service_host(reference: Mapping[str, Any] | None) -> str:
    """The host (and port) of a reference's Bot Connector ``serviceUrl``: Teams' regional paths
    on one host are one service; another host is another one."""
    url = str((reference or {}).get("serviceUrl") or "")
    return urlsplit(url).netloc.casefold()


class GraphProvisioner:
    """Installs the bot for a user through Graph (``TeamsAppInstallation.ReadWriteSelfForUser.All``)."""

    def __init__(self, *, teams_apps: TeamsAppsApi, bot_app_id: str) -> None:
        self._teams_apps = teams_apps
        self._bot_app_id = bot_app_id
        self._catalog_id: str | None = None

    async def ensure_installed(self, *, user_oid: str) -> None:
        if self._catalog_id is None:
            app = await self._teams_apps.find_catalog_app(self._bot_app_id)
            if app is None:
                raise LookupError(
                    "the bot's Teams app is not in the organization's app catalog; publish it first"
                )
            self._catalog_id = app.id
        installation = await self._teams_apps.ensure_installed(user_oid, self._catalog_id)
        log.info(
            "bot installed for a reviewer",
            extra={"user_oid": user_oid, "installation": installation.id},
        )
