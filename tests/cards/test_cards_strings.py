"""Strings table, locale fallback, plurals and dates (Babel) in the viewer's locale and zone."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from card_helpers import texts
from card_scenarios import CONTEXT, review_view

from cards import CardContext, render_review_card
from cards.messages import MESSAGE_STRINGS
from cards.models import MessageKey
from cards.strings import EN, S, Strings, tables

NOW = datetime(2026, 12, 2, 13, 30, tzinfo=UTC)  # a Wednesday


def test_english_table_is_complete() -> None:
    assert {key.value for key in S} <= set(EN)
    assert set(MESSAGE_STRINGS) == set(MessageKey)


def test_every_other_table_only_overrides_known_keys() -> None:
    known = {key.value for key in S}
    for locale, table in tables().items():
        assert set(table) <= known, locale


def test_locale_falls_back_per_key_to_language_then_english() -> None:
    tables = {
        "en": EN,
        "de": {S.APPROVE: "Genehmigen", S.DENY: "Ablehnen"},
        "de-AT": {S.DENY: "Verweigern"},
    }
    austrian = Strings("de_at", tables=tables)
    assert austrian.text(S.DENY) == "Verweigern"  # region
    assert austrian.text(S.APPROVE) == "Genehmigen"  # language
    assert austrian.text(S.DONT_KNOW) == "Don't know"  # English
    assert Strings("fr-FR", tables=tables).text(S.APPROVE) == "Approve"
    assert Strings("", tables=tables).text(S.APPROVE) == "Approve"


def test_regional_english_differs_only_in_dates_and_times() -> None:
    us = Strings("en-US", "America/New_York")
    moment = datetime(2026, 12, 5, 18, 7, tzinfo=UTC)
    assert us.date(moment) == "Sat, Dec 5"
    assert us.time(moment) == "1:07\u202fPM"
    assert us.text(S.APPROVE) == "Approve"
    gb = Strings("en-GB", "Europe/London")
    assert gb.date(moment) == "Sat 5 Dec"
    assert gb.time(moment) == "18:07"
    assert gb.text(S.APPROVE) == "Approve"


def test_dates_are_shown_in_the_viewers_zone() -> None:
    # 23:30 UTC on Saturday is already Sunday in Berlin and still Saturday in Los Angeles.
    due = datetime(2026, 12, 5, 23, 30, tzinfo=UTC)
    assert Strings("en-GB", "Europe/Berlin").date(due) == "Sun 6 Dec"
    assert Strings("en-GB", "America/Los_Angeles").date(due) == "Sat 5 Dec"
    assert Strings("en-GB", "Europe/Berlin").time(due) == "00:30"


def test_unknown_zone_falls_back_to_utc_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="cards.strings"):
        strings = Strings("en-GB", "Pacific Standard Time (made up)")
    assert strings.time(datetime(2026, 12, 5, 18, 7, tzinfo=UTC)) == "18:07"
    assert "Pacific Standard Time (made up)" in caplog.text


def test_an_unsupported_or_malformed_locale_is_shown_in_us_english() -> None:
    for tag in ("ko-KR", "zh-TW", "", "not a tag", "x" * 500):
        strings = Strings(tag)
        assert strings.locale == "en-US"
        assert strings.text(S.APPROVE) == "Approve"


@pytest.mark.parametrize(
    ("due", "relative", "short"),
    [
        (NOW + timedelta(hours=2), "today", "today"),
        (NOW + timedelta(days=1), "tomorrow", "tomorrow"),
        (NOW + timedelta(days=2), "in 2 days", "Friday"),
        (NOW + timedelta(days=6), "in 6 days", "Tuesday"),
        (NOW + timedelta(days=7), "in 7 days", "Wed 9 Dec"),
        (NOW + timedelta(days=45), "in 45 days", "Sat 16 Jan"),
        (NOW - timedelta(days=1), "1 day overdue", "Tue 1 Dec"),
        (NOW - timedelta(days=3), "3 days overdue", "Sun 29 Nov"),
    ],
)
def test_due_phrases(due: datetime, relative: str, short: str) -> None:
    strings = Strings("en-GB", "UTC")
    assert strings.due_relative(due, NOW) == relative
    assert strings.due_short(due, NOW) == short


def test_due_days_count_calendar_days_in_the_viewers_zone() -> None:
    # 22:00 UTC Wednesday is Thursday 07:00 in Tokyo: "tomorrow" for a UTC viewer, "today" there.
    now = datetime(2026, 12, 2, 22, 0, tzinfo=UTC)
    due = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    assert Strings("en", "UTC").due_relative(due, now) == "tomorrow"
    assert Strings("en", "Asia/Tokyo").due_relative(due, now) == "today"


def test_plurals() -> None:
    strings = Strings("en")
    assert strings.plural(S.REASON_NO_RECENT_SIGN_IN, 1) == "no sign-in for 1 day"
    assert strings.plural(S.REASON_NO_RECENT_SIGN_IN, 94) == "no sign-in for 94 days"
    with pytest.raises(TypeError):
        strings.text(S.REASON_NO_RECENT_SIGN_IN)


def test_when_shows_time_today_and_date_otherwise() -> None:
    strings = Strings("en-GB", "UTC")
    assert strings.when(NOW - timedelta(hours=1), NOW) == "12:30"
    assert strings.when(NOW - timedelta(days=1), NOW) == "Tue 1 Dec, 13:30"
    assert strings.when(NOW - timedelta(days=400), NOW) == "Tue, 28 Oct 2025, 13:30"


def test_counts_use_the_viewers_digit_grouping() -> None:
    assert Strings("en-US").plural(S.PREVIEW_APPROVE_COUNT, 1234) == "1,234 items will be approved."
    assert Strings("de-DE").plural(S.PREVIEW_APPROVE_COUNT, 1234).startswith("1.234 ")
    assert Strings("de-DE").plural(S.PREVIEW_APPROVE_COUNT, 1) == "1 Element wird genehmigt."


def test_review_card_uses_the_viewers_locale_and_zone() -> None:
    view = review_view(
        context=CardContext(
            user_id=CONTEXT.user_id, now=CONTEXT.now, time_zone="Asia/Tokyo", locale="en-US"
        ),
        due=datetime(2026, 12, 5, 16, 0, tzinfo=UTC),  # Sun 6 Dec 01:00 in Tokyo
    )
    card = render_review_card(view)
    assert "Due Sun, Dec 6, in 4 days" in texts(card)
    assert card["lang"] == "en-US"
