"""Choosing a person's language and zone (bot.notify.language), and reading mailbox languages
from the emulated Graph into the store without adding a request to any send."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botbuilder.schema import Activity

from bot.clock import ManualClock
from bot.notify.language import (
    LanguageDefaults,
    MailboxLanguages,
    ViewerLanguage,
    activity_language,
    kept_language,
    proactive_language,
    turn_language,
)
from bot.store import PersonRecord
from bot.web.keys import DIRECTORY_API, DISCOVERY, MAILBOX_LANGUAGES, STORE
from emulator.faults import FaultRule
from emulator.seeds import demo_id
from tests.bot_harness import BotOnEmulator, bot_on_emulator

NOW = datetime(2026, 12, 2, 13, 30, tzinfo=UTC)
OID = "aaaaaaaa-0000-0000-0000-000000000001"
DEFAULTS = LanguageDefaults(locale="fr-FR", time_zone="Europe/Paris")


def person(locale: str = "", time_zone: str = "") -> PersonRecord:
    return PersonRecord(user_oid=OID, checked_at=NOW, locale=locale, time_zone=time_zone)


def reference(locale: str | None = None, time_zone: str | None = None) -> dict[str, object]:
    ref: dict[str, object] = {"serviceUrl": "https://smba.example/", "conversation": {"id": "a:1"}}
    if locale:
        ref["locale"] = locale
    if time_zone:
        ref["localTimezone"] = time_zone
    return ref


@pytest.mark.parametrize(
    ("mailbox", "client", "expected"),
    [
        (
            person("de-DE", "Europe/Berlin"),
            reference("ja-JP", "Asia/Tokyo"),
            ("de-DE", "Europe/Berlin", "mailbox:de-DE"),
        ),
        (person("", ""), reference("ja-JP", "Asia/Tokyo"), ("ja-JP", "Asia/Tokyo", "teams:ja-JP")),
        (person("ko-KR", "Asia/Seoul"), reference("ja-JP"), ("ja-JP", "Asia/Seoul", "teams:ja-JP")),
        (person("ko-KR"), reference("ko-KR"), ("fr-FR", "Europe/Paris", "default")),
        (None, None, ("fr-FR", "Europe/Paris", "default")),
        (
            person("zh-CN", "China Standard Time"),
            None,
            ("zh-Hans-CN", "Asia/Shanghai", "mailbox:zh-Hans-CN"),
        ),
        (
            person("", "Not A Zone"),
            reference(None, "../../etc/passwd"),
            ("fr-FR", "Europe/Paris", "default"),
        ),
    ],
)
def test_a_proactive_card_takes_mailbox_then_client_then_default(
    mailbox: PersonRecord | None, client: dict[str, object] | None, expected: tuple[str, str, str]
) -> None:
    language = proactive_language(person=mailbox, reference=client, defaults=DEFAULTS)
    assert (language.locale, language.time_zone, language.basis) == expected


def test_without_any_default_the_cards_speak_us_english() -> None:
    language = proactive_language(person=None, reference=None, defaults=LanguageDefaults())
    assert (language.locale, language.time_zone) == ("en-US", "Etc/UTC")


def test_in_a_turn_the_clients_locale_wins() -> None:
    mailbox = person("de-DE", "Europe/Berlin")
    turn = turn_language(
        locale="ja-JP", time_zone="Asia/Tokyo", person=mailbox, reference=None, defaults=DEFAULTS
    )
    assert (turn.locale, turn.time_zone, turn.basis) == ("ja-JP", "Asia/Tokyo", "turn:ja-JP")
    # A client in a language the cards do not speak (or saying nothing) falls back as a card would.
    korean = turn_language(
        locale="ko-KR", time_zone=None, person=mailbox, reference=None, defaults=DEFAULTS
    )
    assert (korean.locale, korean.time_zone) == ("de-DE", "Europe/Berlin")
    garbage = turn_language(
        locale="<script>", time_zone="x" * 500, person=None, reference=None, defaults=DEFAULTS
    )
    assert (garbage.locale, garbage.time_zone) == ("fr-FR", "Europe/Paris")


def test_an_edit_keeps_the_language_it_was_sent_in_unless_the_persons_own_changed() -> None:
    sent = {"page": 0, "locale": "fr-FR", "localeFrom": "default"}
    default_now_spanish = ViewerLanguage("es-ES", "Europe/Madrid", "default")
    kept = kept_language(sent, default_now_spanish)
    assert (kept.locale, kept.time_zone) == ("fr-FR", "Europe/Madrid")  # the zone is current
    mailbox_now = ViewerLanguage("nl-NL", "Europe/Amsterdam", "mailbox:nl-NL")
    assert kept_language(sent, mailbox_now) == mailbox_now
    # Messages sent before languages were recorded, or with a record that makes no sense.
    assert kept_language({"page": 0}, mailbox_now) == mailbox_now
    assert kept_language(None, mailbox_now) == mailbox_now
    broken = {"locale": "xx-nonsense", "localeFrom": "mailbox:nl-NL"}
    assert kept_language(broken, mailbox_now) == mailbox_now


def test_the_activitys_locale_and_zone_are_read_where_teams_puts_them() -> None:
    full = Activity().deserialize(
        {"type": "message", "locale": "de-DE", "localTimezone": "Europe/Berlin"}
    )
    assert activity_language(full) == ("de-DE", "Europe/Berlin")
    client_info = Activity().deserialize(
        {
            "type": "invoke",
            "entities": [{"type": "clientInfo", "locale": "ja-JP", "timezone": "Asia/Tokyo"}],
        }
    )
    assert activity_language(client_info) == ("ja-JP", "Asia/Tokyo")
    assert activity_language(Activity().deserialize({"type": "invoke"})) == (None, None)
    odd = Activity().deserialize(
        {"type": "invoke", "entities": [{"type": "clientInfo", "locale": 7, "timezone": []}]}
    )
    assert activity_language(odd) == (None, None)


# -- reading mailbox languages from Graph ------------------------------------------------------

JOHANNA = demo_id("user", "johanna")
ALEX = demo_id("user", "alex")


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    async with bot_on_emulator(tmp_path) as running:
        yield running


def mailbox_reads(harness: BotOnEmulator) -> int:
    return sum(
        1 for entry in harness.cloud.graph.request_log if entry[2].endswith("/mailboxSettings")
    )


async def test_discovery_reads_each_new_reviewers_mailbox_once(harness: BotOnEmulator) -> None:
    tenant = harness.cloud.tenant
    tenant.users[JOHANNA].mailbox.language = "ja-JP"  # type: ignore[union-attr]
    tenant.users[ALEX].mailbox = None  # no mailbox: Graph answers 404
    await harness.app[DISCOVERY].run_once()
    people = await harness.app[STORE].get_people(user_oids=[JOHANNA, ALEX])
    assert people[JOHANNA].locale == "ja-JP"
    assert people[ALEX].locale == "" and people[ALEX].time_zone == ""
    first = mailbox_reads(harness)
    assert first >= 2
    # The next poll knows them all: no mailbox is read again.
    await harness.app[DISCOVERY].run_once()
    assert mailbox_reads(harness) == first


async def test_a_failed_read_is_retried_by_the_next_pass(harness: BotOnEmulator) -> None:
    clock = ManualClock(datetime.now(UTC))
    languages = MailboxLanguages(
        store=harness.app[STORE], directory=harness.app[DIRECTORY_API], clock=clock
    )
    harness.cloud.tenant.users[JOHANNA].mailbox.language = "it-IT"  # type: ignore[union-attr]
    harness.cloud.faults.add(
        FaultRule(service="graph", kind="status", status=400, path_regex=r"\$batch", remaining=1)
    )
    assert await languages.refresh([JOHANNA]) == 0
    assert await harness.app[STORE].get_people(user_oids=[JOHANNA]) == {}
    assert await languages.refresh([JOHANNA]) == 1
    people = await harness.app[STORE].get_people(user_oids=[JOHANNA])
    assert people[JOHANNA].locale == "it-IT"
    # Fresh: not read again; a day later: read again, and a change is kept.
    assert await languages.refresh([JOHANNA]) == 0
    harness.cloud.tenant.users[JOHANNA].mailbox.language = "pt-BR"  # type: ignore[union-attr]
    clock.advance(timedelta(days=1))
    assert await languages.refresh([JOHANNA]) == 1
    people = await harness.app[STORE].get_people(user_oids=[JOHANNA])
    assert people[JOHANNA].locale == "pt-BR"


async def test_the_app_reads_languages_before_the_notifier_queues_cards(
    harness: BotOnEmulator,
) -> None:
    handlers = harness.app[DISCOVERY]._handlers
    assert handlers.index(harness.app[MAILBOX_LANGUAGES]) < len(handlers) - 1
