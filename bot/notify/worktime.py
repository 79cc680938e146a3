"""Working time: whose working hours, in which time zone, and the calendar arithmetic on them.

A :class:`WorkingHours` is one person's working week (time zone, working days, daily start and end)
plus the holidays they do not work. Every reminder and escalation time is computed on it, so that a
reviewer in Sydney and one in Seattle are each reminded inside their own working day.

Where it comes from: Graph ``mailboxSettings`` (:func:`hours_from_mailbox`) when the reviewer has
a mailbox, else the configured default (:func:`parse_working_hours`, 09:00–17:00 Mon–Fri UTC
unless configured). Graph names zones in Windows style ("Pacific Standard Time") or IANA style;
:func:`resolve_zone` maps both to :class:`zoneinfo.ZoneInfo`.

All datetimes given to and returned by this module are timezone-aware; results are in UTC.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "DEFAULT_WORKING_HOURS",
    "WINDOWS_TO_IANA",
    "WorkingHours",
    "hours_from_mailbox",
    "parse_hour_range",
    "parse_time_of_day",
    "parse_working_days",
    "parse_working_hours",
    "parse_zone",
    "resolve_zone",
]

logger = logging.getLogger(__name__)

# A calendar with working days must reach one within this many days; more means the holiday list
# covers everything, which is a configuration error rather than a reason to loop for ever.
_MAX_SEARCH_DAYS = 3 * 366

_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class WorkingHours:
    """One person's working week: time zone, working days, daily hours, and days off.

    ``days`` uses :meth:`datetime.date.weekday` numbering (Monday 0 … Sunday 6). ``start`` and
    ``end`` are local wall times in ``zone`` with ``start < end`` (working periods that cross
    midnight are not supported; Outlook does not offer them either). ``holidays`` are local dates.
    """

    zone: ZoneInfo
    days: frozenset[int]
    start: time
    end: time
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.days:
            raise ValueError("working hours need at least one working day")
        if not self.days <= frozenset(range(7)):
            raise ValueError("working days are numbered 0 (Monday) to 6 (Sunday)")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("working start and end are local wall times without tzinfo")
        if not self.start < self.end:
            raise ValueError("working hours must start before they end on the same day")

    # -- construction helpers ------------------------------------------------------------------
    def with_holidays(self, holidays: Iterable[date]) -> WorkingHours:
        """The same week with ``holidays`` added to the days off."""
        extra = frozenset(holidays)
        if extra <= self.holidays:
            return self
        return replace(self, holidays=self.holidays | extra)

    # -- days ------------------------------------------------------------------------------------
    def local(self, at: datetime) -> datetime:
        """``at`` as wall time in this person's zone."""
        return _aware(at).astimezone(self.zone)

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.holidays

    def period(self, day: date) -> tuple[datetime, datetime]:
        """The working period of ``day`` (a local date) as UTC instants ``[start, end)``."""
        return (
            datetime.combine(day, self.start, tzinfo=self.zone).astimezone(UTC),
            datetime.combine(day, self.end, tzinfo=self.zone).astimezone(UTC),
        )

    def day_start(self, day: date) -> datetime:
        """When work starts on the local date ``day`` (UTC), whether or not it is a working day."""
        return self.period(day)[0]

    def shift_working_days(self, day: date, count: int) -> date:
        """The working day ``count`` working days after (``count > 0``) or before ``day``.

        ``day`` itself need not be a working day; ``count == 0`` returns ``day`` unchanged.
        """
        step = 1 if count > 0 else -1
        remaining = abs(count)
        current = day
        searched = 0
        while remaining:
            current += timedelta(days=step)
            searched += 1
            if searched > _MAX_SEARCH_DAYS * max(1, abs(count)):
                raise ValueError("no working day found: do the holidays cover every working day?")
            if self.is_working_day(current):
                remaining -= 1
        return current

    def last_working_day_before(self, at: datetime) -> date:
        """The local date of the last working period that starts before ``at``."""
        at_utc = _aware(at).astimezone(UTC)
        day = self.local(at_utc).date()
        for _ in range(_MAX_SEARCH_DAYS):
            if self.is_working_day(day) and self.day_start(day) < at_utc:
                return day
            day -= timedelta(days=1)
        raise ValueError("no working day found: do the holidays cover every working day?")

    # -- moments --------------------------------------------------------------------------------
    def is_working_moment(self, at: datetime) -> bool:
        """True if ``at`` falls inside a working period (start inclusive, end exclusive)."""
        at_utc = _aware(at).astimezone(UTC)
        day = self.local(at_utc).date()
        if not self.is_working_day(day):
            return False
        start, end = self.period(day)
        return start <= at_utc < end

    def next_working_moment(self, at: datetime) -> datetime:
        """``at`` itself (in UTC) if it is inside working hours, else the start of the next period."""
        at_utc = _aware(at).astimezone(UTC)
        day = self.local(at_utc).date()
        for _ in range(_MAX_SEARCH_DAYS):
            if self.is_working_day(day):
                start, end = self.period(day)
                if start <= at_utc < end:
                    return at_utc
                if at_utc < start:
                    return start
            day += timedelta(days=1)
        raise ValueError("no working day found: do the holidays cover every working day?")


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("datetimes given to the scheduler must be timezone-aware")
    return at


# -- time zones --------------------------------------------------------------------------------

# Windows time-zone ids (what Exchange and Graph mailboxSettings use) → IANA ids, following the
# "001" (primary) rows of Unicode CLDR's windowsZones mapping. Only zones that still exist in current
# Windows builds and have a stable IANA target are listed; names not found here are tried as IANA
# ids, and anything still unknown falls back to the configured default zone (see
# :func:`hours_from_mailbox`).
WINDOWS_TO_IANA: Mapping[str, str] = {
    "Dateline Standard Time": "Etc/GMT+12",
    "UTC-11": "Etc/GMT+11",
    "Aleutian Standard Time": "America/Adak",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Marquesas Standard Time": "Pacific/Marquesas",
    "Alaskan Standard Time": "America/Anchorage",
    "UTC-09": "Etc/GMT+9",
    "Pacific Standard Time (Mexico)": "America/Tijuana",
    "UTC-08": "Etc/GMT+8",
    "Pacific Standard Time": "America/Los_Angeles",
    "US Mountain Standard Time": "America/Phoenix",
    "Mountain Standard Time (Mexico)": "America/Mazatlan",
    "Mountain Standard Time": "America/Denver",
    "Yukon Standard Time": "America/Whitehorse",
    "Central America Standard Time": "America/Guatemala",
    "Central Standard Time": "America/Chicago",
    "Easter Island Standard Time": "Pacific/Easter",
    "Central Standard Time (Mexico)": "America/Mexico_City",
    "Canada Central Standard Time": "America/Regina",
    "SA Pacific Standard Time": "America/Bogota",
    "Eastern Standard Time (Mexico)": "America/Cancun",
    "Eastern Standard Time": "America/New_York",
    "Haiti Standard Time": "America/Port-au-Prince",
    "Cuba Standard Time": "America/Havana",
    "US Eastern Standard Time": "America/Indiana/Indianapolis",
    "Turks And Caicos Standard Time": "America/Grand_Turk",
    "Paraguay Standard Time": "America/Asuncion",
    "Atlantic Standard Time": "America/Halifax",
    "Venezuela Standard Time": "America/Caracas",
    "Central Brazilian Standard Time": "America/Cuiaba",
    "SA Western Standard Time": "America/La_Paz",
    "Pacific SA Standard Time": "America/Santiago",
    "Newfoundland Standard Time": "America/St_Johns",
    "Tocantins Standard Time": "America/Araguaina",
    "E. South America Standard Time": "America/Sao_Paulo",
    "SA Eastern Standard Time": "America/Cayenne",
    "Argentina Standard Time": "America/Argentina/Buenos_Aires",
    "Greenland Standard Time": "America/Nuuk",
    "Montevideo Standard Time": "America/Montevideo",
    "Magallanes Standard Time": "America/Punta_Arenas",
    "Saint Pierre Standard Time": "America/Miquelon",
    "Bahia Standard Time": "America/Bahia",
    "UTC-02": "Etc/GMT+2",
    "Azores Standard Time": "Atlantic/Azores",
    "Cape Verde Standard Time": "Atlantic/Cape_Verde",
    "UTC": "Etc/UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "Sao Tome Standard Time": "Africa/Sao_Tome",
    "Morocco Standard Time": "Africa/Casablanca",
    "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest",
    "Romance Standard Time": "Europe/Paris",
    "Central European Standard Time": "Europe/Warsaw",
    "W. Central Africa Standard Time": "Africa/Lagos",
    "Jordan Standard Time": "Asia/Amman",
    "GTB Standard Time": "Europe/Bucharest",
    "Middle East Standard Time": "Asia/Beirut",
    "Egypt Standard Time": "Africa/Cairo",
    "E. Europe Standard Time": "Europe/Chisinau",
    "Syria Standard Time": "Asia/Damascus",
    "West Bank Standard Time": "Asia/Hebron",
    "South Africa Standard Time": "Africa/Johannesburg",
    "FLE Standard Time": "Europe/Kiev",
    "Israel Standard Time": "Asia/Jerusalem",
    "South Sudan Standard Time": "Africa/Juba",
    "Kaliningrad Standard Time": "Europe/Kaliningrad",
    "Sudan Standard Time": "Africa/Khartoum",
    "Libya Standard Time": "Africa/Tripoli",
    "Namibia Standard Time": "Africa/Windhoek",
    "Arabic Standard Time": "Asia/Baghdad",
    "Turkey Standard Time": "Europe/Istanbul",
    "Arab Standard Time": "Asia/Riyadh",
    "Belarus Standard Time": "Europe/Minsk",
    "Russian Standard Time": "Europe/Moscow",
    "E. Africa Standard Time": "Africa/Nairobi",
    "Volgograd Standard Time": "Europe/Volgograd",
    "Iran Standard Time": "Asia/Tehran",
    "Arabian Standard Time": "Asia/Dubai",
    "Astrakhan Standard Time": "Europe/Astrakhan",
    "Azerbaijan Standard Time": "Asia/Baku",
    "Russia Time Zone 3": "Europe/Samara",
    "Mauritius Standard Time": "Indian/Mauritius",
    "Saratov Standard Time": "Europe/Saratov",
    "Georgian Standard Time": "Asia/Tbilisi",
    "Caucasus Standard Time": "Asia/Yerevan",
    "Afghanistan Standard Time": "Asia/Kabul",
    "West Asia Standard Time": "Asia/Tashkent",
    "Ekaterinburg Standard Time": "Asia/Yekaterinburg",
    "Pakistan Standard Time": "Asia/Karachi",
    "Qyzylorda Standard Time": "Asia/Qyzylorda",
    "India Standard Time": "Asia/Kolkata",
    "Sri Lanka Standard Time": "Asia/Colombo",
    "Nepal Standard Time": "Asia/Kathmandu",
    "Central Asia Standard Time": "Asia/Bishkek",
    "Bangladesh Standard Time": "Asia/Dhaka",
    "Omsk Standard Time": "Asia/Omsk",
    "Myanmar Standard Time": "Asia/Yangon",
    "SE Asia Standard Time": "Asia/Bangkok",
    "Altai Standard Time": "Asia/Barnaul",
    "W. Mongolia Standard Time": "Asia/Hovd",
    "North Asia Standard Time": "Asia/Krasnoyarsk",
    "N. Central Asia Standard Time": "Asia/Novosibirsk",
    "Tomsk Standard Time": "Asia/Tomsk",
    "China Standard Time": "Asia/Shanghai",
    "North Asia East Standard Time": "Asia/Irkutsk",
    "Singapore Standard Time": "Asia/Singapore",
    "W. Australia Standard Time": "Australia/Perth",
    "Taipei Standard Time": "Asia/Taipei",
    "Ulaanbaatar Standard Time": "Asia/Ulaanbaatar",
    "Aus Central W. Standard Time": "Australia/Eucla",
    "Transbaikal Standard Time": "Asia/Chita",
    "Tokyo Standard Time": "Asia/Tokyo",
    "North Korea Standard Time": "Asia/Pyongyang",
    "Korea Standard Time": "Asia/Seoul",
    "Yakutsk Standard Time": "Asia/Yakutsk",
    "Cen. Australia Standard Time": "Australia/Adelaide",
    "AUS Central Standard Time": "Australia/Darwin",
    "E. Australia Standard Time": "Australia/Brisbane",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "West Pacific Standard Time": "Pacific/Port_Moresby",
    "Tasmania Standard Time": "Australia/Hobart",
    "Vladivostok Standard Time": "Asia/Vladivostok",
    "Lord Howe Standard Time": "Australia/Lord_Howe",
    "Bougainville Standard Time": "Pacific/Bougainville",
    "Russia Time Zone 10": "Asia/Srednekolymsk",
    "Magadan Standard Time": "Asia/Magadan",
    "Norfolk Standard Time": "Pacific/Norfolk",
    "Sakhalin Standard Time": "Asia/Sakhalin",
    "Central Pacific Standard Time": "Pacific/Guadalcanal",
    "Russia Time Zone 11": "Asia/Kamchatka",
    "New Zealand Standard Time": "Pacific/Auckland",
    "UTC+12": "Etc/GMT-12",
    "Fiji Standard Time": "Pacific/Fiji",
    "Chatham Islands Standard Time": "Pacific/Chatham",
    "UTC+13": "Etc/GMT-13",
    "Tonga Standard Time": "Pacific/Tongatapu",
    "Samoa Standard Time": "Pacific/Apia",
    "Line Islands Standard Time": "Pacific/Kiritimati",
    # Exchange reports a mailbox without a chosen zone in this URI form.
    "tzone://Microsoft/Utc": "Etc/UTC",
}

_WINDOWS_FOLDED = {name.casefold(): iana for name, iana in WINDOWS_TO_IANA.items()}
# IANA ids are ASCII path segments; refusing anything else keeps odd input away from the tz loader.
_IANA_SHAPE = re.compile(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*")


def resolve_zone(name: str | None) -> ZoneInfo | None:
    """The zone named by a Windows id ("Tokyo Standard Time") or an IANA id; ``None`` if unknown."""
    if not name or not name.strip():
        return None
    text = name.strip()
    key = _WINDOWS_FOLDED.get(text.casefold(), text)
    if not _IANA_SHAPE.fullmatch(key):
        return None
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a key naming a directory of the tz database ("America") rather than a zone.
        return None


# -- parsing -----------------------------------------------------------------------------------

_DAY_ALIASES = {name[:3]: index for index, name in enumerate(_DAY_NAMES)} | {
    name: index for index, name in enumerate(_DAY_NAMES)
}


def parse_time_of_day(text: str) -> time:
    """``"08:00"``, ``"08:00:00"`` or Graph's ``"08:00:00.0000000"`` as a naive :class:`time`."""
    main = text.strip().split(".", 1)[0]
    if not re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", main):
        raise ValueError(f"has {text.strip()!r}, which is not a time of day like 09:00")
    hour, minute, *rest = (int(part) for part in main.split(":"))
    second = rest[0] if rest else 0
    if hour == 24 and minute == 0 and second == 0:
        # "24:00" means the end of the day; the latest representable wall time stands in for it.
        return time(23, 59, 59, 999999)
    try:
        return time(hour, minute, second)
    except ValueError:
        raise ValueError(f"has {text.strip()!r}, which is not a time of day like 09:00") from None


def parse_working_days(text: str | Iterable[str]) -> frozenset[int]:
    """Working days from ``"mon-fri"``, ``"mon,tue,thu"``, or Graph's ``["monday", ...]``."""
    parts = (
        [p.strip().casefold() for p in text.split(",")]
        if isinstance(text, str)
        else [str(p).strip().casefold() for p in text]
    )
    days: set[int] = set()
    for part in parts:
        if not part:
            continue
        if "-" in part:
            first, _, last = part.partition("-")
            a, b = _day(first.strip()), _day(last.strip())
            # A range may wrap over the weekend ("sun-thu").
            span = (b - a) % 7
            days.update((a + i) % 7 for i in range(span + 1))
        else:
            days.add(_day(part))
    if not days:
        raise ValueError("names no working day (use e.g. mon-fri or mon,tue,wed)")
    return frozenset(days)


def _day(name: str) -> int:
    try:
        return _DAY_ALIASES[name]
    except KeyError:
        raise ValueError(f"has {name!r}, which is not a day of the week (use mon … sun)") from None


def parse_hour_range(text: str) -> tuple[time, time]:
    """Daily hours from ``"09:00-17:00"``; the start must be before the end."""
    start_text, sep, end_text = text.partition("-")
    if not sep:
        raise ValueError("is not a range like 09:00-17:00")
    start, end = parse_time_of_day(start_text), parse_time_of_day(end_text)
    if not start < end:
        raise ValueError("must start before it ends (working hours cannot cross midnight)")
    return start, end


def parse_zone(text: str) -> ZoneInfo:
    """A zone from an IANA or Windows name; ``ValueError`` if unknown."""
    zone = resolve_zone(text)
    if zone is None:
        raise ValueError("is not a known IANA or Windows time zone")
    return zone


def parse_working_hours(
    *, hours: str = "09:00-17:00", days: str = "mon-fri", zone: str = "UTC"
) -> WorkingHours:
    """The configured default working week, from settings text. Raises ``ValueError`` on bad input.

    ``hours`` as in :func:`parse_hour_range`; ``days`` as in :func:`parse_working_days`; ``zone``
    an IANA or Windows zone name.
    """
    start, end = parse_hour_range(hours)
    return WorkingHours(zone=parse_zone(zone), days=parse_working_days(days), start=start, end=end)


DEFAULT_WORKING_HOURS = WorkingHours(
    zone=ZoneInfo("Etc/UTC"), days=frozenset(range(5)), start=time(9), end=time(17)
)


def hours_from_mailbox(mailbox: Mapping[str, Any] | None, *, default: WorkingHours) -> WorkingHours:
    """A person's working hours from a Graph ``mailboxSettings`` body, falling back to ``default``.

    Pass the raw JSON (``bot.graph.models.MailboxSettings.raw``) or ``None`` for no mailbox.
    Rules, field by field:

    - zone: ``workingHours.timeZone.name``, else the mailbox ``timeZone``, else ``default.zone``.
      A ``customTimeZone`` (``bias`` plus transition rules) is not converted: Microsoft's docs and
      real payloads disagree on the sign of ``bias``, and a wrong guess would remind people at
      night, so the mailbox ``timeZone`` or the default zone is used instead.
    - days, start and end: from ``workingHours``, else the default's. Values that do not parse
      or do not make a working day (end not after start, no days) fall back to the default's.
    - holidays are the default's (Graph has no per-user holiday list).
    """
    if not mailbox:
        return default
    working = mailbox.get("workingHours")
    working = working if isinstance(working, Mapping) else {}
    tz_block = working.get("timeZone")
    hours_zone_name = tz_block.get("name") if isinstance(tz_block, Mapping) else None
    is_custom = (
        isinstance(tz_block, Mapping)
        and "customtimezone" in str(tz_block.get("@odata.type", "")).casefold()
    )
    mailbox_zone_name = mailbox.get("timeZone")

    zone = None if is_custom else resolve_zone(_opt_str(hours_zone_name))
    if zone is None:
        zone = resolve_zone(_opt_str(mailbox_zone_name))
    if zone is None:
        if hours_zone_name or mailbox_zone_name:
            logger.info(
                "mailbox time zone %r / %r not recognised; using the default %s",
                hours_zone_name,
                mailbox_zone_name,
                default.zone.key,
            )
        zone = default.zone

    days, start, end = default.days, default.start, default.end
    if working:
        try:
            raw_days = working.get("daysOfWeek")
            if isinstance(raw_days, list) and raw_days:
                days = parse_working_days([str(d) for d in raw_days])
            if isinstance(working.get("startTime"), str):
                start = parse_time_of_day(working["startTime"])
            if isinstance(working.get("endTime"), str):
                end = parse_time_of_day(working["endTime"])
            return WorkingHours(
                zone=zone, days=days, start=start, end=end, holidays=default.holidays
            )
        except ValueError as exc:
            logger.info("mailbox working hours unusable (%s); using the default hours", exc)
    return WorkingHours(
        zone=zone,
        days=default.days,
        start=default.start,
        end=default.end,
        holidays=default.holidays,
    )


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None
