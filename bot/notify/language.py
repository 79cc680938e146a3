"""Which language and time zone a person's cards are in, chosen without asking them.

- **In a turn** (a click, a chat message): the locale the Teams client sent with the activity
  (``locale``) and its time zone (``localTimezone``, or the ``clientInfo`` entity's).
- **Proactive cards** (first cards, edits, reminders, escalations): the language of the person's
  mailbox (Graph ``mailboxSettings.language.locale``), else the locale their Teams client last
  sent (kept with their conversation reference), else the tenant default (``DEFAULT_LOCALE``),
  else US English; the time zone likewise from the mailbox, the client, then
  ``DEFAULT_TIME_ZONE``.

Each step takes the first *supported* candidate (:func:`cards.i18n.pick_locale`): a Korean mailbox
moves on to the next candidate rather than to English.

Mailbox settings are read from Graph where Graph is read anyway, never while sending:
:class:`MailboxLanguages` looks up each new reviewer during discovery (one ``$batch`` entry per
person, before their first card is queued), the reminder pass passes on what it reads for working
hours (:meth:`MailboxLanguages.note`), and escalation recipients are looked up before their card
is queued. The store keeps the result (``people``); the outbox reads it for a whole wave at once.

A card edited later keeps the language it was sent in unless the person's own language changed
(:func:`kept_language`): the card's message records the locale and what chose it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.clock import Clock
from bot.graph import DirectoryApi, GraphError
from bot.graph.models import MailboxSettings
from bot.notify.worktime import resolve_zone
from bot.reviews.events import Assigned, DomainEvent
from bot.store import PersonRecord, Store
from cards.i18n import DEFAULT_LOCALE, normalize_locale

__all__ = [
    "LanguageDefaults",
    "MailboxLanguages",
    "ViewerLanguage",
    "activity_language",
    "kept_language",
    "normalize_zone",
    "person_from_mailbox",
    "proactive_language",
    "turn_language",
]

log = logging.getLogger(__name__)

#: Keys of the conversation reference that hold what the Teams client last said.
REFERENCE_LOCALE = "locale"
REFERENCE_TIME_ZONE = "localTimezone"

#: How long a mailbox reading stands before discovery reads it again (the reminder pass refreshes
#: people with open reviews more often, as it reads their working hours).
MAILBOX_MAX_AGE = timedelta(days=1)

#: The shape of a language tag (BCP 47, or Exchange's ``de_DE``), ASCII only. A mailbox's
#: ``language.locale`` is kept only in that shape: Graph's JSON may carry any string, a lone
#: surrogate included, which no database encoding can store.
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8}){0,7}")

_BASIS_DEFAULT = "default"


@dataclass(frozen=True)
class LanguageDefaults:
    """The tenant's defaults: ``DEFAULT_LOCALE`` and ``DEFAULT_TIME_ZONE`` (IANA)."""

    locale: str = DEFAULT_LOCALE
    time_zone: str = "UTC"


@dataclass(frozen=True)
class ViewerLanguage:
    """A card's locale and time zone, and what chose the locale: ``"mailbox:de-DE"``,
    ``"teams:ja-JP"``, ``"turn:fr-FR"`` or ``"default"``."""

    locale: str
    time_zone: str
    basis: str

    def record(self) -> dict[str, str]:
        """What a sent card's message keeps, for :func:`kept_language`."""
        return {"locale": self.locale, "localeFrom": self.basis}


def normalize_zone(name: object) -> str | None:
    """The IANA name of a Windows or IANA zone name from outside, or None if it names none."""
    if not isinstance(name, str) or not name.strip() or len(name) > 128:
        return None
    return _zone_key(name)


@functools.lru_cache(maxsize=1024)
def _zone_key(name: str) -> str | None:
    zone = resolve_zone(name)
    return zone.key if zone is not None else None


def _client(reference: Mapping[str, Any] | None, key: str) -> str | None:
    value = reference.get(key) if reference else None
    return value if isinstance(value, str) and value else None


def _first_locale(candidates: Iterable[tuple[str, str | None]]) -> tuple[str, str] | None:
    for source, tag in candidates:
        locale = normalize_locale(tag)
        if locale is not None:
            return locale, f"{source}:{locale}"
    return None


def _first_zone(candidates: Iterable[str | None]) -> str | None:
    for candidate in candidates:
        zone = normalize_zone(candidate)
        if zone is not None:
            return zone
    return None


def proactive_language(
    *,
    person: PersonRecord | None,
    reference: Mapping[str, Any] | None,
    defaults: LanguageDefaults,
) -> ViewerLanguage:
    """The language of a card nobody asked for right now (see the module docs)."""
    mailbox_locale = person.locale if person else None
    mailbox_zone = person.time_zone if person else None
    chosen = _first_locale(
        (("mailbox", mailbox_locale), ("teams", _client(reference, REFERENCE_LOCALE)))
    )
    locale, basis = chosen or (normalize_locale(defaults.locale) or DEFAULT_LOCALE, _BASIS_DEFAULT)
    zone = _first_zone((mailbox_zone, _client(reference, REFERENCE_TIME_ZONE), defaults.time_zone))
    return ViewerLanguage(locale=locale, time_zone=zone or "UTC", basis=basis)


def turn_language(
    *,
    locale: str | None,
    time_zone: str | None,
    person: PersonRecord | None,
    reference: Mapping[str, Any] | None,
    defaults: LanguageDefaults,
) -> ViewerLanguage:
    """The language of an answer in a turn: what the client sent, else as for a proactive card."""
    fallback = proactive_language(person=person, reference=reference, defaults=defaults)
    chosen = normalize_locale(locale)
    zone = normalize_zone(time_zone) or fallback.time_zone
    if chosen is None:
        return ViewerLanguage(locale=fallback.locale, time_zone=zone, basis=fallback.basis)
    return ViewerLanguage(locale=chosen, time_zone=zone, basis=f"turn:{chosen}")


def kept_language(sent: Mapping[str, Any] | None, current: ViewerLanguage) -> ViewerLanguage:
    """The language to edit a card in: the one it was sent in, unless the person's own language
    changed since (what chose it differs now), in which case the current one. A tenant default
    that changed meanwhile does not change cards already sent. The time zone is always current."""
    if not sent:
        return current
    locale, basis = sent.get("locale"), sent.get("localeFrom")
    if not isinstance(locale, str) or not isinstance(basis, str) or basis != current.basis:
        return current
    kept = normalize_locale(locale)
    if kept is None:
        return current
    return ViewerLanguage(locale=kept, time_zone=current.time_zone, basis=basis)


def activity_language(activity: Any) -> tuple[str | None, str | None]:
    """The locale and time zone a Teams activity carries: ``locale`` and ``localTimezone``, else
    those of its ``clientInfo`` entity. Untrusted: both are checked where they are used."""
    locale = getattr(activity, "locale", None)
    zone = getattr(activity, "local_timezone", None)
    for entity in getattr(activity, "entities", None) or []:
        data: Any = entity
        kind: Any = None
        if isinstance(entity, Mapping):
            kind = entity.get("type")
        else:  # botbuilder's Entity: extra fields in additional_properties
            kind = getattr(entity, "type", None)
            data = getattr(entity, "additional_properties", None)
        if kind != "clientInfo" or not isinstance(data, Mapping):
            continue
        locale = locale or data.get("locale")
        zone = zone or data.get("timezone")
    return (
        locale if isinstance(locale, str) and locale else None,
        zone if isinstance(zone, str) and zone else None,
    )


def person_from_mailbox(
    user_oid: str, settings: MailboxSettings | None, *, checked_at: datetime
) -> PersonRecord:
    """What the store keeps of a mailbox reading (``None``: no mailbox)."""
    if settings is None:
        return PersonRecord(user_oid=user_oid, checked_at=checked_at)
    # Kept as Exchange says it (a language the cards do not speak yet may be one later), if it
    # has the shape of a language tag at all.
    locale = settings.language.strip()
    if not _LANGUAGE_TAG.fullmatch(locale):
        locale = ""
    hours_zone = settings.working_hours.time_zone if settings.working_hours else ""
    zone = normalize_zone(settings.time_zone) or normalize_zone(hours_zone) or ""
    return PersonRecord(user_oid=user_oid, locale=locale, time_zone=zone, checked_at=checked_at)


class MailboxLanguages:
    """Reads people's mailbox language and time zone into the store, where Graph is read anyway.

    As a discovery event handler it looks up the reviewers of new work (``Assigned``) whom the
    store does not know, or knows from a reading older than :data:`MAILBOX_MAX_AGE`, before the
    notifier (registered after it) queues their first card.
    """

    def __init__(
        self,
        *,
        store: Store,
        directory: DirectoryApi | None,
        clock: Clock,
        max_age: timedelta = MAILBOX_MAX_AGE,
    ) -> None:
        self._store = store
        self._directory = directory
        self._clock = clock
        self._max_age = max_age
        # Reads in flight, by person: discovery handles several reviews at once and a reviewer
        # of two of them is read once, the second review waiting for the first's read.
        self._reading: dict[str, asyncio.Future[None]] = {}

    async def __call__(self, event: DomainEvent) -> None:
        await self.handle_batch([event])

    async def handle_batch(self, events: Sequence[DomainEvent]) -> None:
        reviewers = [event.reviewer_oid for event in events if isinstance(event, Assigned)]
        if reviewers:
            await self.refresh(reviewers)

    async def refresh(self, user_oids: Sequence[str]) -> int:
        """Read the mailbox settings of those of ``user_oids`` not known or not fresh; returns how
        many were read. A failed read is logged and left for the next pass (cards go out in the
        next best language meanwhile)."""
        if self._directory is None:
            return 0
        wanted = sorted(set(user_oids))
        if not wanted:
            return 0
        elsewhere = [self._reading[oid] for oid in wanted if oid in self._reading]
        if elsewhere:
            await asyncio.wait(elsewhere)
        now = self._clock.now()
        known = await self._store.get_people(user_oids=wanted)
        stale = [
            oid
            for oid in wanted
            if oid not in self._reading
            and (oid not in known or now - known[oid].checked_at >= self._max_age)
        ]
        if not stale:
            return 0
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reading.update(dict.fromkeys(stale, done))
        try:
            found = await self._directory.mailbox_settings_many(stale)
            people = [
                person_from_mailbox(oid, settings if settings.raw else None, checked_at=now)
                for oid, settings in found.items()
            ]
            await self._store.save_people(people=people)
        except GraphError as exc:
            log.warning("mailbox languages unreadable: %s", type(exc).__name__)
            return 0
        finally:
            for oid in stale:
                self._reading.pop(oid, None)
            done.set_result(None)
        if len(found) < len(stale):
            log.info("mailbox languages: %d of %d read", len(found), len(stale))
        return len(found)

    async def note(self, user_oid: str, settings: MailboxSettings | None) -> None:
        """A mailbox reading made elsewhere (the reminder pass): keep it if it says something new."""
        now = self._clock.now()
        person = person_from_mailbox(user_oid, settings, checked_at=now)
        known = (await self._store.get_people(user_oids=[user_oid])).get(user_oid)
        if (
            known is not None
            and (known.locale, known.time_zone) == (person.locale, person.time_zone)
            and now - known.checked_at < self._max_age
        ):
            return
        await self._store.save_people(people=[person])
