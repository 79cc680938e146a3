"""The ``Store`` protocol: everything the product keeps, behind keyword-only async methods.

The store is the bot's only memory. Every replica reads and writes it, so each method is safe under
concurrency: inserts that must happen once use uniqueness (``enqueue_outbox``, ``mark_reminder_sent``,
``remember_once``), claims are conditional updates (or ``FOR UPDATE SKIP LOCKED`` on PostgreSQL),
and leases carry a fencing token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

__all__ = [
    "AssignmentChange",
    "AuditEvent",
    "DecisionStart",
    "InstanceRecord",
    "ItemClaims",
    "ItemRecord",
    "Lease",
    "OnceWork",
    "OutboxCompletion",
    "OutboxMessage",
    "OutboxStatus",
    "PersonRecord",
    "QueuedMessage",
    "SentMessage",
    "Store",
    "StoreError",
    "WriteClaim",
]

OutboxStatus = Literal["pending", "in_flight", "done", "failed"]


class StoreError(Exception):
    """The store could not do what was asked (unreachable, constraint broken in a way callers must see)."""


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """One access review instance (or the active stage of one) as last seen in Graph."""

    instance_id: str
    definition_id: str
    display_name: str
    status: str
    start_at: datetime | None
    end_at: datetime | None
    stage_id: str | None = None
    # Everything else the cards and reminders need (settings, resource, default decision, …).
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """One decision item of an instance (principal, resource, recommendation, current decision)."""

    instance_id: str
    item_id: str
    decision: str = "NotReviewed"
    recommendation: str = "NotAvailable"
    stage_id: str | None = None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    justification: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AssignmentChange:
    """What ``replace_assignments`` changed for one instance."""

    added: frozenset[tuple[str, str]]  # (reviewer_oid, item_id)
    removed: frozenset[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A durable unit of outgoing work (a card to send or edit, a decision to write)."""

    id: int
    key: str
    kind: str
    payload: Mapping[str, Any]
    status: OutboxStatus
    attempts: int
    not_before: datetime
    result: Mapping[str, Any] | None = None
    last_error: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WriteClaim:
    """The per-item write claims of one decision intent (its outbox ``key``), to let go of."""

    key: str
    instance_id: str
    item_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ItemClaims:
    """Where one decision intent stands on each of its items (see ``item_writes`` in the schema).

    ``held``: its write may go now. ``superseded``: a later click owns the item; this intent
    does not write it. ``waiting``: an earlier intent's write is still in flight.
    """

    held: frozenset[str] = frozenset()
    superseded: frozenset[str] = frozenset()
    waiting: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class DecisionStart:
    """What :meth:`Store.begin_decision` made of one click.

    ``message`` is the intent, claimed by the caller (None when there is nothing for the caller
    to do: a redelivered click already done or in another worker's hands, or a click that only
    repeats earlier ones). ``claims`` is None when the intent existed before (a redelivery):
    the caller asks :meth:`Store.claim_item_writes` then. ``repeats`` maps items this click
    repeats (same reviewer, decision and reason within the window) to the earlier click's key,
    and ``repeat_status`` gives those earlier intents' outbox status.
    """

    added: bool
    message: OutboxMessage | None
    claims: ItemClaims | None = None
    repeats: Mapping[str, str] = field(default_factory=dict)
    repeat_status: Mapping[str, OutboxStatus] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A message the bot sent, kept so later changes edit it instead of sending a new one."""

    reviewer_oid: str
    instance_id: str
    kind: str
    conversation_id: str
    activity_id: str
    sent_at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """What the directory says about a person that their cards need: the language and time zone
    of their mailbox (Graph ``mailboxSettings``), as last read at ``checked_at``.

    ``locale`` is a BCP 47 tag and ``time_zone`` an IANA zone; either is "" when the person has
    no mailbox, did not choose one, or it could not be read.
    """

    user_oid: str
    checked_at: datetime
    locale: str = ""
    time_zone: str = ""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One line of the audit trail: who did what to which item, when, and how it went."""

    action: str
    actor: str
    at: datetime | None = None  # filled by the store from its clock when None
    instance_id: str | None = None
    item_id: str | None = None
    result: str = "ok"
    request_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None


@dataclass(frozen=True)
class OutboxCompletion:
    """One claimed message's outcome, for :meth:`Store.complete_outbox_many`."""

    message_id: int
    result: Mapping[str, Any] | None = None
    items: Sequence[ItemRecord] = ()
    audit: Sequence[AuditEvent] = ()
    sent: SentMessage | None = None
    # A decision intent's item write claims, released (and settled) with the completion.
    claims: WriteClaim | None = None


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message to add to the outbox (as :meth:`Store.enqueue_outbox` takes it)."""

    key: str
    kind: str
    payload: Mapping[str, Any]
    not_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class OnceWork:
    """Outbox messages that only the taker of ``once_key`` queues (:meth:`Store.enqueue_once`)."""

    once_key: str
    messages: Sequence[QueuedMessage] = ()


@dataclass(frozen=True, slots=True)
class Lease:
    """A named, expiring lease. ``fence`` grows each time the lease changes hands."""

    name: str
    holder: str
    expires_at: datetime
    fence: int


class Store(Protocol):
    """Persistence for the whole product. Implementations: SQLite (default) and PostgreSQL."""

    # -- lifecycle and health -------------------------------------------------------------------
    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise :class:`StoreError` unless the database answers."""
        ...

    async def schema_version(self) -> int: ...

    # -- conversation references ---------------------------------------------------------------
    #: How many times this store object has changed or deleted a conversation reference: a
    #: key for callers that remember what they saw stored (another process's writes do not count).
    conversation_references_written: int

    async def save_conversation_reference(
        self, *, tenant_id: str, user_oid: str, reference: Mapping[str, Any]
    ) -> bool:
        """Store or refresh a user's 1:1 conversation reference. True if it changed."""
        ...

    async def get_conversation_reference(
        self, *, tenant_id: str, user_oid: str
    ) -> dict[str, Any] | None: ...

    async def get_conversation_references(
        self, *, tenant_id: str, user_oids: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """The stored references of several users (those who have one), by user."""
        ...

    async def get_conversation_reference_times(
        self, *, tenant_id: str, user_oids: Sequence[str]
    ) -> dict[str, datetime]:
        """When each of several users' references was last stored or changed, by user."""
        ...

    async def delete_conversation_reference(self, *, tenant_id: str, user_oid: str) -> None: ...

    # -- people (mailbox language and time zone) ---------------------------------------------
    async def save_people(self, *, people: Sequence[PersonRecord]) -> None:
        """Store or replace what is known of each person."""
        ...

    async def get_people(self, *, user_oids: Sequence[str]) -> dict[str, PersonRecord]:
        """What is known of several people (those the store has), by object id."""
        ...

    # -- review snapshot ----------------------------------------------------------------------
    async def upsert_instances(self, *, instances: Iterable[InstanceRecord]) -> None: ...

    async def get_instance(self, *, instance_id: str) -> InstanceRecord | None: ...

    async def list_instances(self, *, status: str | None = None) -> list[InstanceRecord]: ...

    async def upsert_items(self, *, items: Iterable[ItemRecord]) -> None: ...

    async def get_item(self, *, instance_id: str, item_id: str) -> ItemRecord | None: ...

    async def list_items(
        self, *, instance_id: str, item_ids: Sequence[str] | None = None
    ) -> list[ItemRecord]: ...

    # -- assignments (reviewer ↔ decision item) -----------------------------------------------
    async def replace_assignments(
        self, *, instance_id: str, pairs: Iterable[tuple[str, str]]
    ) -> AssignmentChange:
        """Make ``pairs`` (reviewer_oid, item_id) the whole set for the instance; report the diff."""
        ...

    async def list_assignments(
        self,
        *,
        instance_id: str | None = None,
        reviewer_oid: str | None = None,
        item_ids: Sequence[str] | None = None,
        reviewer_oids: Sequence[str] | None = None,
    ) -> list[tuple[str, str, str]]:
        """(reviewer_oid, instance_id, item_id) rows matching the filters (``item_ids``: of
        those items only; ``reviewer_oids``: of those reviewers only)."""
        ...

    async def is_reviewer(
        self, *, reviewer_oid: str, instance_id: str, item_ids: Sequence[str]
    ) -> bool:
        """True only if the reviewer is assigned every named item of the instance."""
        ...

    async def list_reviewer_items(
        self, *, instance_id: str, reviewer_oid: str, item_ids: Sequence[str] | None = None
    ) -> list[ItemRecord]:
        """The items of the instance assigned to the reviewer (only those of ``item_ids`` when
        given), by item id, in one read: what ``list_assignments`` then ``list_items`` give."""
        ...

    # -- outbox --------------------------------------------------------------------------------
    async def enqueue_outbox(
        self,
        *,
        key: str,
        kind: str,
        payload: Mapping[str, Any],
        not_before: datetime | None = None,
    ) -> bool:
        """Add a message unless one with ``key`` exists. True if this call added it."""
        ...

    async def enqueue_outbox_many(
        self, *, messages: Sequence[tuple[str, str, Mapping[str, Any]]]
    ) -> int:
        """Add many (key, kind, payload) messages at once; existing keys are left alone."""
        ...

    async def claim_outbox(
        self, *, worker: str, limit: int, lease_s: float, kinds: Sequence[str] | None = None
    ) -> list[OutboxMessage]:
        """Claim up to ``limit`` due messages for ``lease_s``; an expired claim can be taken again."""
        ...

    async def claim_outbox_key(
        self, *, key: str, worker: str, lease_s: float
    ) -> OutboxMessage | None:
        """Claim the message with ``key`` if it is due (or its claim expired); None otherwise."""
        ...

    async def complete_outbox(
        self,
        *,
        message_id: int,
        worker: str,
        result: Mapping[str, Any] | None = None,
        items: Sequence[ItemRecord] = (),
        audit: Sequence[AuditEvent] = (),
        sent: SentMessage | None = None,
        claims: WriteClaim | None = None,
    ) -> bool:
        """Mark a claimed message done, writing its outcome (``items``, ``audit``, ``sent``) in
        the same transaction, and releasing and settling ``claims``. False if the claim was lost
        to another worker (the outcome is written all the same: it happened)."""
        ...

    async def complete_outbox_many(
        self, *, worker: str, completions: Sequence[OutboxCompletion]
    ) -> list[bool]:
        """:meth:`complete_outbox` for several messages in one transaction (group commit)."""
        ...

    async def enqueue_and_claim_outbox(
        self, *, key: str, kind: str, payload: Mapping[str, Any], worker: str, lease_s: float
    ) -> tuple[bool, OutboxMessage | None]:
        """Add (unless ``key`` exists) and claim one message in one transaction."""
        ...

    async def retry_outbox(
        self,
        *,
        message_id: int,
        worker: str,
        error: str,
        not_before: datetime,
        claims: WriteClaim | None = None,
    ) -> bool:
        """Give a claimed message back to be tried again at ``not_before``; release ``claims``
        (a write attempt ended; the newest click's write is still to come)."""
        ...

    async def fail_outbox(
        self,
        *,
        message_id: int,
        worker: str,
        error: str,
        result: Mapping[str, Any] | None = None,
        claims: WriteClaim | None = None,
        audit: Sequence[AuditEvent] = (),
        items: Sequence[ItemRecord] = (),
    ) -> bool:
        """Mark a claimed message failed for good (the error and ``result`` are kept and
        reported); release and settle ``claims``. The ``items`` (upserted; with ``claims``, not
        those a later claim superseded) and the ``audit`` lines are written in the same
        transaction, and only if the failure took effect: all or nothing. False if the claim
        was lost to another worker (nothing is written then; that worker decides the outcome)."""
        ...

    async def expedite_outbox(
        self, *, kinds: Sequence[str], error_prefix: str, marked_before: datetime | None = None
    ) -> int:
        """Make due now the pending messages of ``kinds`` that wait for a later try because of
        a failure whose ``last_error`` starts with ``error_prefix`` (a non-empty marker the
        caller wrote with :meth:`retry_outbox`). Messages already due, claimed, finished, or
        waiting for any other reason keep their ``not_before``; the error and the attempts are
        kept. With ``marked_before``, only messages last given back before that moment (an
        outage seen by a process that has gone). Idempotent: a second call (from any replica)
        finds nothing left to move. Returns how many messages were made due."""
        ...

    async def get_outbox(self, *, key: str) -> OutboxMessage | None: ...

    async def get_outbox_many(self, *, keys: Sequence[str]) -> dict[str, OutboxMessage]:
        """The messages with these keys (those that exist), by key."""
        ...

    async def requeue_outbox(self, *, keys: Sequence[str], failed_for_s: float = 0.0) -> list[str]:
        """Queue finished messages among ``keys`` again, as new: ``done`` ones, and ``failed``
        ones that failed at least ``failed_for_s`` ago (by the store's clock). Returns their
        keys."""
        ...

    async def list_outbox(
        self,
        *,
        status: OutboxStatus,
        kinds: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[OutboxMessage]:
        """Messages in ``status``, most recently changed first."""
        ...

    async def count_outbox(self, *, status: OutboxStatus) -> int: ...

    # -- per-item decision writes (see ``item_writes`` in the schema) --------------------------
    async def begin_decision(
        self,
        *,
        key: str,
        kind: str,
        payload: Mapping[str, Any],
        instance_id: str,
        actor_oid: str,
        decisions: Mapping[str, str],
        reason_digest: str,
        worker: str,
        lease_s: float,
        repeat_window_s: float,
    ) -> DecisionStart:
        """One click, in one transaction: add its intent (claimed by ``worker``) unless ``key``
        exists, make it the newest click on each item unless it repeats the newest one (same
        actor, decision and reason digest within ``repeat_window_s``), and take the write claim
        of each item no other write holds. A click that only repeats adds no intent."""
        ...

    async def claim_item_writes(
        self, *, key: str, instance_id: str, item_ids: Sequence[str], lease_s: float
    ) -> ItemClaims:
        """Take (or renew) the write claims of the intent ``key`` on the items it is the newest
        click of and no other write holds; let go of those a later click took over."""
        ...

    async def busy_items(
        self, *, instance_id: str, item_ids: Sequence[str], since: datetime
    ) -> set[str]:
        """Items with a write queued or in flight, or whose last write ended at ``since`` or
        later (so a Graph read begun at ``since`` may predate it)."""
        ...

    # -- sent messages -------------------------------------------------------------------------
    async def record_sent_message(self, *, message: SentMessage) -> None: ...

    async def sent_recipients(self, *, instance_id: str, kind: str) -> set[str]:
        """Everyone who was sent a message of ``kind`` about the instance."""
        ...

    async def sent_recipients_of_items(
        self, *, instance_id: str, item_ids: Sequence[str], kind: str
    ) -> list[str]:
        """The reviewers of any of ``item_ids`` in the instance who were sent a message of
        ``kind`` about it, sorted (one read: whose card to edit once the items changed)."""
        ...

    async def get_sent_message(
        self, *, reviewer_oid: str, instance_id: str, kind: str
    ) -> SentMessage | None: ...

    async def get_sent_messages(
        self, *, instance_id: str, kind: str, reviewer_oids: Sequence[str]
    ) -> dict[str, SentMessage]:
        """The ``kind`` messages about the instance sent to several reviewers, by reviewer."""
        ...

    # -- reminders and one-time keys -----------------------------------------------------------
    async def mark_reminder_sent(
        self, *, reminder_id: str, recipient_oid: str, instance_id: str, kind: str
    ) -> bool:
        """Record a reminder/escalation slot. True only for the first caller for that id."""
        ...

    async def remember_once(self, *, key: str, ttl_s: float) -> bool:
        """True the first time ``key`` is seen within ``ttl_s``; False for duplicates."""
        ...

    async def first_assigned_at(self, *, instance_id: str, reviewer_oid: str) -> datetime | None:
        """When the reviewer was first given an item of the instance (None if never)."""
        ...

    async def set_snooze(self, *, reviewer_oid: str, instance_id: str, until: datetime) -> None: ...

    async def get_snooze(self, *, reviewer_oid: str, instance_id: str) -> datetime | None: ...

    async def record_escalation(
        self, *, instance_id: str, reviewer_oid: str, recipient_oid: str
    ) -> bool:
        """Remember who was told about a reviewer's pending work. True the first time."""
        ...

    async def escalation_recipients(self, *, instance_id: str, reviewer_oid: str) -> list[str]: ...

    # -- audit trail ---------------------------------------------------------------------------
    async def append_audit(self, *, event: AuditEvent) -> int: ...

    async def append_audits(self, *, events: Sequence[AuditEvent]) -> None:
        """Many audit lines in one transaction."""
        ...

    async def list_audit(
        self,
        *,
        instance_id: str | None = None,
        limit: int = 1000,
        after_id: int = 0,
        actions: Sequence[str] | None = None,
        newest_first: bool = False,
    ) -> list[AuditEvent]: ...

    # -- leases --------------------------------------------------------------------------------
    async def acquire_lease(self, *, name: str, holder: str, ttl_s: float) -> Lease | None:
        """Take or renew the lease. None if another holder has it and it has not expired."""
        ...

    async def release_lease(self, *, name: str, holder: str) -> None: ...

    async def check_lease(self, *, name: str, holder: str, fence: int) -> bool:
        """True only if ``holder`` still holds the lease with this ``fence`` and it has not expired."""
        ...

    async def get_lease(self, *, name: str) -> Lease | None: ...

    # -- token cache (encrypted by the caller) -------------------------------------------------
    async def get_token_cache(self, *, key: str) -> bytes | None: ...

    async def put_token_cache(self, *, key: str, blob: bytes) -> None: ...

    # -- work queued once, atomically (remind-now, escalations) ----------------------------------
    async def enqueue_once(
        self,
        *,
        work: Sequence[OnceWork],
        ttl_s: float,
        audit: Callable[[Sequence[OnceWork]], Sequence[AuditEvent]] | None = None,
    ) -> list[OnceWork]:
        """Take each ``once_key`` for ``ttl_s`` (as :meth:`remember_once`: an expired key may be
        taken again), queue the messages of the work this call took (existing outbox keys are
        left alone), and write the audit lines ``audit(taken)`` returns (a pure function) — all
        in one transaction, so a failure anywhere leaves all of it or none. Returns the work this
        call took, in the order given."""
        ...

    async def reminder_slot_taken(self, *, reminder_id: str) -> bool:
        """True when :meth:`mark_reminder_sent` recorded the slot ``reminder_id``."""
        ...

    async def count_outbox_due(self) -> int:
        """Messages being sent or due to be: in flight, or pending with ``not_before`` now or
        earlier (those waiting for someone's working hours are not counted)."""
        ...

    async def claim_outbox_early(
        self, *, key: str, worker: str, lease_s: float
    ) -> OutboxMessage | None:
        """Claim the pending message with ``key`` even before its ``not_before`` (a reminder that
        waits for working hours, which an admin's ``now`` sends at once). None when there is no
        such message or it is claimed or finished already."""
        ...
