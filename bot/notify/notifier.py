"""Turning discovery's domain events into queued card messages, and making sure every reviewer
with work gets their card (also after a card failed for good: see :data:`FAILED_CARD_RECHECK_S`)."""

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
from bot.store import AuditEvent, OutboxMessage, Store

__all__ = ["FAILED_CARD_RECHECK_S", "GraphProvisioner", "ReviewNotifier"]

log = logging.getLogger(__name__)

#: A first card that failed for good (blocked, app not installed, not in the catalog, Graph
#: refusing the install, a 500) is queued again by discovery once its failure is this old, in
#: case the reason went away without the bot hearing of it: the user unblocked the bot, an
#: admin published the app or granted a permission. An hour brings an admin's fix to reviewers
#: within the hour, and costs one connector call per failed card per hour, nothing next to the
#: 50 calls a second a tenant may make. When the bot does hear of it (a new conversation
#: reference: the app reinstalled, the chat there again), the card is queued at once.
FAILED_CARD_RECHECK_S = 3600.0


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
        """Items changed through the bot: edit every sent card that shows one of them (one read
        for whose cards, one write queueing their edits)."""
        reviewers = await self._store.sent_recipients_of_items(
            instance_id=instance_id, item_ids=item_ids, kind="review"
        )
        if reviewers:
            await self._store.enqueue_outbox_many(
                messages=[
                    review_card_message(
                        tenant_id=self._tenant_id,
                        reviewer_oid=reviewer,
                        instance_id=instance_id,
                        edit=True,
                    )
                    for reviewer in reviewers
                ]
            )
        if self._wake is not None:
            self._wake()

    async def ensure_first_cards(self, instance_id: str, reviewers: Sequence[str]) -> None:
        """Make sure each of ``reviewers`` (who have pending work in the instance) has a card.

        Discovery calls this for every instance it processed. A reviewer never sent a card has
        a first-card row that is one of: missing (a crash between recording the assignment and
        queueing it) — queued now; pending or in flight — left alone; finished without a card
        (skipped, e.g. no items when its turn came) — queued again; failed for good — queued
        again when the reason may have gone: their conversation reference changed after the
        failure (the app reinstalled, the chat there again), or the failure is
        :data:`FAILED_CARD_RECHECK_S` old. The key of a first card is fixed, so none is ever
        queued twice. Two reads per instance when nothing is missing.
        """
        if not reviewers:
            return
        sent = await self._store.get_sent_messages(
            instance_id=instance_id, kind="review", reviewer_oids=reviewers
        )
        missing = [r for r in reviewers if r not in sent]
        if not missing:
            return
        messages = {
            message[0]: (reviewer, message)
            for reviewer in missing
            for message in [
                review_card_message(
                    tenant_id=self._tenant_id,
                    reviewer_oid=reviewer,
                    instance_id=instance_id,
                    edit=False,
                )
            ]
        }
        rows = await self._store.get_outbox_many(keys=list(messages))
        queued = await self._store.enqueue_outbox_many(
            messages=[message for key, (_r, message) in messages.items() if key not in rows]
        )
        requeued = await self._requeue_finished(
            instance_id, {key: (messages[key][0], row) for key, row in rows.items()}
        )
        if (queued or requeued) and self._wake is not None:
            self._wake()

    async def _requeue_finished(
        self, instance_id: str, rows: Mapping[str, tuple[str, OutboxMessage]]
    ) -> int:
        """Queue again the finished first cards of ``rows`` (key → (reviewer, row)) whose reason
        to fail may have gone (see :meth:`ensure_first_cards`)."""
        finished = {k: v for k, v in rows.items() if v[1].status in ("done", "failed")}
        if not finished:
            return 0
        failed = {k: v for k, v in finished.items() if v[1].status == "failed"}
        moved: set[str] = set()
        if failed:
            times = await self._store.get_conversation_reference_times(
                tenant_id=self._tenant_id, user_oids=sorted({r for r, _row in failed.values()})
            )
            moved = {
                key
                for key, (reviewer, row) in failed.items()
                if reviewer in times
                and row.updated_at is not None
                and times[reviewer] > row.updated_at
            }
        again = await self._store.requeue_outbox(
            keys=sorted(set(finished) - moved), failed_for_s=FAILED_CARD_RECHECK_S
        )
        if moved:
            again += await self._store.requeue_outbox(keys=sorted(moved))
        audit = [
            AuditEvent(
                action="notify_requeued",
                actor="discovery",
                instance_id=instance_id,
                result="reference_changed" if key in moved else "recheck",
                detail={
                    "recipient": failed[key][0],
                    "reason": str((failed[key][1].result or {}).get("reason") or ""),
                },
            )
            for key in again
            if key in failed
        ]
        if audit:
            log.info(
                "failed cards queued again", extra={"instance_id": instance_id, "count": len(audit)}
            )
            await self._store.append_audits(events=audit)
        return len(again)

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
        are sent there, once per chat. The first cards that failed for this reviewer are queued
        again too: a reinstall may be what they waited for.
        """
        reference = await self._store.get_conversation_reference(
            tenant_id=tenant_id, user_oid=reviewer
        )
        conversation_id = str((reference or {}).get("conversation", {}).get("id") or "")
        other_service = previous is not None and _service_host(previous) != _service_host(reference)
        instances = {
            i for _r, i, _item in await self._store.list_assignments(reviewer_oid=reviewer)
        }
        failed_first: dict[str, tuple[str, OutboxMessage]] = {}
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
            elif sent is None:
                key = review_card_message(
                    tenant_id=tenant_id, reviewer_oid=reviewer, instance_id=instance_id, edit=False
                )[0]
                row = await self._store.get_outbox(key=key)
                if row is not None and row.status == "failed":
                    failed_first[instance_id] = (key, row)
        for instance_id, (key, row) in failed_first.items():
            if await self._store.requeue_outbox(keys=[key]):
                await self._store.append_audit(
                    event=AuditEvent(
                        action="notify_requeued",
                        actor="bot",
                        instance_id=instance_id,
                        result="reference_changed",
                        detail={
                            "recipient": reviewer,
                            "reason": str((row.result or {}).get("reason") or ""),
                        },
                    )
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
