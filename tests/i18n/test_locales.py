"""Reading a viewer's locale tag, choosing among candidates, and Babel's data loaded once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cards.i18n import normalize_locale, pick_locale
from cards.strings import S, Strings

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 2, 13, 30, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("de-DE", "de-DE"),
        ("de_at", "de-AT"),
        ("DE", "de"),
        ("fr-CA", "fr-CA"),
        ("ja-JP", "ja-JP"),
        ("zh-CN", "zh-Hans-CN"),  # CLDR's likely subtags: mainland China writes Simplified
        ("zh-Hans", "zh-Hans"),
        ("zh-SG", "zh-Hans-SG"),
        ("pt-BR", "pt-BR"),
        ("pt-PT", "pt-PT"),  # Brazilian words, Portugal's dates
        ("es-419", "es-419"),
        ("en-GB", "en-GB"),
        ("en-US-u-ca-gregory", "en-US"),  # extensions say nothing the cards use
        ("de-XX", "de"),  # an unknown region of a known language still tells the language
    ],
)
def test_supported_tags_are_normalized(tag: str, expected: str) -> None:
    assert normalize_locale(tag) == expected


@pytest.mark.parametrize(
    "tag",
    ["zh-TW", "zh-HK", "zh-Hant", "ko-KR", "ru", "xx", "", "   ", "de DE", "../../etc", "x" * 200],
)
def test_unsupported_or_malformed_tags_are_refused(tag: str) -> None:
    assert normalize_locale(tag) is None


def test_the_first_supported_candidate_wins() -> None:
    assert pick_locale(["ko-KR", None, "de-AT", "fr-FR"]) == "de-AT"
    assert pick_locale([None, "", "zh-TW"], default="fr-FR") == "fr-FR"
    assert pick_locale([None], default="not a locale") == "en-US"


def test_words_come_from_the_language_and_dates_from_the_region() -> None:
    moment = datetime(2026, 1, 2, 9, 5, tzinfo=UTC)
    austria = Strings("de-AT", "Europe/Vienna")
    assert austria.text(S.APPROVE) == "Genehmigen"
    assert "Jän." in austria.date(moment)  # January in Austria
    assert "Jan." in Strings("de-DE", "Europe/Berlin").date(moment)
    portugal = Strings("pt-PT", "Europe/Lisbon")
    assert portugal.text(S.APPROVE) == "Aprovar"
    assert portugal.locale == "pt-PT"


@pytest.mark.parametrize(
    ("locale", "due_line", "overdue"),
    [
        ("de-DE", "Fällig am Sa., 5. Dez. (in 3 Tagen)", "seit 2 Tagen überfällig"),
        ("fr-FR", "Échéance\u00a0: sam. 5 déc. (dans 3 jours)", "en retard de 2 jours"),
        ("es-ES", "Vence el sáb, 5 dic (dentro de 3 días)", "vencida hace 2 días"),
        ("pt-BR", "Vence em sáb., 5 de dez. (em 3 dias)", "atrasada há 2 dias"),
        ("it-IT", "Scadenza: sab 5 dic (tra 3 giorni)", "scaduta da 2 giorni"),
        ("nl-NL", "Vervaldatum: za 5 dec (over 3 dagen)", "2 dagen te laat"),
        ("ja-JP", "期限: 12月5日(土)（3 日後）", "期限を 2 日過ぎています"),
        ("zh-CN", "截止日期：12月5日周六（3天后）", "已逾期 2 天"),
    ],
)
def test_due_dates_in_each_language(locale: str, due_line: str, overdue: str) -> None:
    strings = Strings(locale, "UTC")
    assert strings.due_line(NOW + timedelta(days=3), NOW) == due_line
    assert strings.due_relative(NOW - timedelta(days=2), NOW) == overdue


def test_sentences_are_joined_as_the_language_writes_them() -> None:
    assert Strings("de").join_sentences(["Eins.", "Zwei."]) == "Eins. Zwei."
    assert Strings("ja").join_sentences(["一。", "二。"]) == "一。二。"
    assert Strings("zh-CN").join_sentences(["一。", "二。"]) == "一。二。"


def test_after_warming_no_card_of_any_locale_reads_babel_data() -> None:
    """In a fresh interpreter: warm at start-up, then forbid Babel to open any data file and render
    every card kind in regional variants of every language. A variant the warm-up missed would
    be loaded from disk on its first card (in the outbox, in a send slot) and fail here."""
    script = textwrap.dedent(
        """
        import dataclasses

        import babel.localedata

        from cards.i18n import warm_locales
        from tests.cards.card_scenarios import CONTEXT, scenarios

        assert warm_locales() > 100

        def refuse(name):
            raise AssertionError(f"Babel read {name} from disk while rendering")

        babel.localedata.resolve_locale_filename = refuse

        tags = ["de-CH", "en-IN", "fr-CA", "es-MX", "pt-PT", "pt-BR", "it-CH", "nl-BE",
                "ja-JP", "zh-CN", "zh-SG", "en-AU", "de-AT", "fr-BE", "es-419", "en-150"]
        count = 0
        for tag in tags:
            context = dataclasses.replace(CONTEXT, locale=tag)
            for make in scenarios(context).values():
                make()
                count += 1
        print("rendered", count)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rendered" in result.stdout
