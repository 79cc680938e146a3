"""Which languages the cards speak, how a viewer's locale tag is read, and Babel's data at hand.

A locale tag (BCP 47: ``de-AT``, ``zh-Hans-CN``, ``pt_BR``; what Teams puts in an activity's
``locale`` and Exchange in ``mailboxSettings.language.locale``) is read with Babel, which applies
CLDR's likely subtags (``zh-CN`` is Simplified Chinese, ``zh-TW`` Traditional). The tag is
*supported* when one of the string tables speaks its language (:data:`TABLE_LOCALES`); then the
words come from that table and every date, time, relative time, plural rule and number from the
tag's own CLDR data, so ``de-AT`` reads German with Austrian dates and ``en-GB`` English with
British ones. A tag nobody translated (``ko-KR``, ``zh-TW``) is not supported: the caller moves on
to its next candidate (see :func:`pick_locale`).

Babel loads CLDR data from disk the first time a locale is used. :func:`warm_locales` loads every
variant of every supported language once, at start-up, so rendering a card never reads a file
(the outbox renders cards in its send slots).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from babel import Locale, UnknownLocaleError, localedata
from babel.dates import format_skeleton, format_time, format_timedelta
from babel.numbers import format_decimal

__all__ = [
    "DEFAULT_LOCALE",
    "TABLE_LOCALES",
    "LocaleKit",
    "locale_kit",
    "normalize_locale",
    "pick_locale",
    "warm_locales",
]

logger = logging.getLogger(__name__)

#: The string tables (``cards.translations``): English and the translations of issue 18.
TABLE_LOCALES: Final = ("en", "de", "fr", "es", "pt-BR", "it", "nl", "ja", "zh-Hans")

#: What a card falls back to when nothing better is known.
DEFAULT_LOCALE: Final = "en-US"

# A language whose only table is a regional one: Portuguese reads Brazilian Portuguese (a reader
# in Portugal understands it better than English; their dates stay Portugal's).
_LANGUAGE_TABLES: Final = {"pt": "pt-BR"}
# Chinese is supported in the Simplified script only: Traditional readers (zh-TW, zh-HK) are not
# given Simplified text, as Microsoft's own products do not.
_SCRIPT_TABLES: Final = {("zh", "Hans"): "zh-Hans"}
# Languages written without spaces between sentences.
_UNSPACED_LANGUAGES: Final = frozenset({"ja", "zh"})
# Formatted strings kept per locale before the cache starts over.
_MAX_FORMATTED = 4096
# Longest tag accepted: real tags are far shorter; a longer one is garbage, not a locale.
_MAX_TAG_CHARS = 64


@dataclass(frozen=True, slots=True)
class LocaleKit:
    """Everything one supported locale needs: its canonical tag, its string tables (most specific
    first, English last) and its Babel locale for dates, plurals and numbers."""

    tag: str
    tables: tuple[str, ...]
    babel: Locale
    # Formatted dates, times and day counts: a wave of cards shows the same few again and again,
    # and Babel takes microseconds for each where a look-up takes a fraction of one.
    _formatted: dict[tuple[object, ...], str] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def _cached(self, key: tuple[object, ...], make: Callable[[], str]) -> str:
        text = self._formatted.get(key)
        if text is None:
            if len(self._formatted) >= _MAX_FORMATTED:
                self._formatted.clear()
            text = self._formatted[key] = make()
        return text

    @property
    def language(self) -> str:
        return str(self.babel.language)

    @property
    def sentence_separator(self) -> str:
        """What goes between two sentences of one line ("" in Japanese and Chinese)."""
        return "" if self.language in _UNSPACED_LANGUAGES else " "

    def plural_category(self, n: int) -> str:
        """CLDR's plural category of ``n`` in this language (``one``, ``few``, ``many``, ``other``)."""
        return str(self.babel.plural_form(abs(n)))

    def number(self, n: int) -> str:
        """``n`` with this locale's digit grouping ("1.234" in German)."""
        if -1000 < n < 1000:
            return str(n)  # every supported locale writes small numbers in ASCII digits
        return str(format_decimal(n, locale=self.babel))

    def date(self, local: datetime, *, with_year: bool) -> str:
        """Weekday, day and month (and the year) in this locale's order: "Fr., 4. Dez."."""
        skeleton = "yMMMEd" if with_year else "MMMEd"
        day = local.date()
        return self._cached(
            ("date", day, skeleton),
            lambda: str(format_skeleton(skeleton, day, locale=self.babel)),
        )

    def weekday(self, local: datetime) -> str:
        """The full weekday name, as it stands alone ("Freitag", "金曜日")."""
        return str(self.babel.days["stand-alone"]["wide"][local.weekday()])

    def time(self, local: datetime) -> str:
        """Hours and minutes in this locale's clock ("14:02", "2:02 PM")."""
        clock = local.time().replace(second=0, microsecond=0, tzinfo=None)
        return self._cached(
            ("time", clock), lambda: str(format_time(clock, "short", locale=self.babel))
        )

    def date_time(self, date: str, time: str) -> str:
        """A date and a time joined by this locale's medium pattern ("Fr., 4. Dez., 14:02")."""
        pattern = str(self.babel.datetime_formats["medium"])
        return pattern.replace("{1}", date).replace("{0}", time)

    def in_days(self, days: int) -> str:
        """A relative day count: "in 3 days" (future) or "3 days ago" (past), counted in days
        however many there are ("in 45 days", not "in 2 months")."""
        return self._cached(
            ("days", days),
            lambda: str(
                format_timedelta(
                    timedelta(days=days),
                    granularity="day",
                    threshold=float("inf"),
                    add_direction=True,
                    locale=self.babel,
                )
            ),
        )


def _parse(tag: str) -> Locale | None:
    """The Babel locale of a BCP 47 tag (``de-AT``, ``de_at``, ``zh-Hans-CN``), or None."""
    cleaned = tag.strip().replace("_", "-")
    if not cleaned or len(cleaned) > _MAX_TAG_CHARS:
        return None
    # Extensions (-u-…, -x-…) and variants say nothing the cards use.
    parts: list[str] = []
    for part in cleaned.split("-"):
        if len(part) == 1:
            break
        parts.append(part)
    if not parts or not all(part.isascii() and part.isalnum() for part in parts):
        return None
    try:
        return Locale.parse("_".join(parts), sep="_")
    except (UnknownLocaleError, ValueError, TypeError):
        pass
    # An unknown region of a known language (de-XX) still tells the language.
    try:
        return Locale.parse(parts[0], sep="_")
    except (UnknownLocaleError, ValueError, TypeError):
        return None


def _tag_of(locale: Locale) -> str:
    parts = [str(locale.language)]
    if locale.script:
        parts.append(str(locale.script))
    if locale.territory:
        parts.append(str(locale.territory))
    return "-".join(parts)


def _tables_for(locale: Locale) -> tuple[str, ...]:
    language = str(locale.language)
    chain: list[str] = []
    script_table = _SCRIPT_TABLES.get((language, str(locale.script or "")))
    if script_table is not None:
        chain.append(script_table)
    elif language in TABLE_LOCALES:
        chain.append(language)
    elif language in _LANGUAGE_TABLES:
        chain.append(_LANGUAGE_TABLES[language])
    if "en" not in chain:
        chain.append("en")
    return tuple(chain)


_KITS: dict[str, LocaleKit | None] = {}
_KITS_LOCK = threading.Lock()
_MISSING: Final = object()


def locale_kit(tag: str | None) -> LocaleKit | None:
    """The kit of a supported locale tag, or None for a tag that is unsupported or malformed.

    English is supported in every region (``en-GB``, ``en-IN``). Results are cached per tag.
    """
    if not tag:
        return None
    # One entry for every spelling of a tag (de_AT, de-at, DE-AT): warm_locales fills them.
    key = tag.strip().replace("_", "-").casefold()[: _MAX_TAG_CHARS + 1]
    kit = _KITS.get(key, _MISSING)
    if kit is not _MISSING:
        return kit if isinstance(kit, LocaleKit) else None
    parsed = _parse(key)
    result: LocaleKit | None = None
    if parsed is not None:
        tables = _tables_for(parsed)
        if tables[0] != "en" or parsed.language == "en":
            result = LocaleKit(tag=_tag_of(parsed), tables=tables, babel=parsed)
    with _KITS_LOCK:
        if len(_KITS) < 10_000:  # tags come from outside: the cache must not grow without end
            _KITS[key] = result
    return result


def normalize_locale(tag: str | None) -> str | None:
    """The canonical form of a supported tag (``de_at`` → ``de-AT``, ``zh-CN`` →
    ``zh-Hans-CN``), or None when the cards do not speak its language."""
    kit = locale_kit(tag)
    return kit.tag if kit is not None else None


def pick_locale(candidates: Iterable[str | None], default: str = DEFAULT_LOCALE) -> str:
    """The first supported candidate, normalized; else ``default`` (itself checked), else English."""
    for candidate in candidates:
        tag = normalize_locale(candidate)
        if tag is not None:
            return tag
    return normalize_locale(default) or DEFAULT_LOCALE


def warm_locales() -> int:
    """Load the string tables and Babel's data for every CLDR variant of every supported language,
    and exercise the formatting each card uses, so that no card render reads a file later.
    Returns how many locales were loaded. Takes a fraction of a second; call it once at start-up (off the
    event loop)."""
    # The translations are modules imported on first use: import them now too.
    from .strings import tables

    tables()
    languages = {table.split("-")[0] for table in TABLE_LOCALES}
    sample = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    count = 0
    for identifier in sorted(localedata.locale_identifiers()):
        if identifier.split("_")[0] not in languages:
            continue
        # Clients send tags without the script (zh-CN for zh-Hans-CN): read that form too.
        parts = identifier.split("_")
        if len(parts) == 3:
            locale_kit(f"{parts[0]}-{parts[2]}")
        kit = locale_kit(identifier)
        if kit is None:
            continue  # Traditional Chinese: never rendered
        kit.date(sample, with_year=True)
        kit.date(sample, with_year=False)
        kit.weekday(sample)
        kit.time(sample)
        kit.date_time("", "")
        kit.in_days(3)
        kit.in_days(-3)
        kit.plural_category(2)
        kit.number(12345)
        count += 1
    logger.debug("Babel data loaded for %d locales", count)
    return count
