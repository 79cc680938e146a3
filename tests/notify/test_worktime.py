"""Working hours: zones (Windows and IANA), mailbox settings, and working-day arithmetic."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.notify.worktime import (
    DEFAULT_WORKING_HOURS,
    WINDOWS_TO_IANA,
    WorkingHours,
    hours_from_mailbox,
    parse_hour_range,
    parse_time_of_day,
    parse_working_days,
    parse_working_hours,
    resolve_zone,
)
from emulator.clock import ManualClock
from emulator.graph import GraphApi, GraphRequest
from emulator.identity import AppRegistration, Identity
from emulator.seeds import DEFAULT_BOT_APP_ID, demo

UTC_9_17 = DEFAULT_WORKING_HOURS
BRISBANE = WorkingHours(
    zone=ZoneInfo("Australia/Brisbane"), days=frozenset(range(5)), start=time(9), end=time(17)
)
LOS_ANGELES = WorkingHours(
    zone=ZoneInfo("America/Los_Angeles"), days=frozenset(range(5)), start=time(8), end=time(16)
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# 2026-12-07 is a Monday.
MONDAY = date(2026, 12, 7)


class TestWorkingHoursMoments:
    def test_inside_hours_is_itself(self) -> None:
        at = utc(2026, 12, 7, 10, 15)
        assert UTC_9_17.is_working_moment(at)
        assert UTC_9_17.next_working_moment(at) == at

    def test_start_is_inside_and_end_is_outside(self) -> None:
        assert UTC_9_17.is_working_moment(utc(2026, 12, 7, 9))
        assert not UTC_9_17.is_working_moment(utc(2026, 12, 7, 17))
        assert UTC_9_17.next_working_moment(utc(2026, 12, 7, 17)) == utc(2026, 12, 8, 9)

    def test_before_start_waits_for_the_start(self) -> None:
        assert UTC_9_17.next_working_moment(utc(2026, 12, 7, 3, 30)) == utc(2026, 12, 7, 9)

    def test_friday_evening_waits_for_monday(self) -> None:
        assert UTC_9_17.next_working_moment(utc(2026, 12, 11, 18)) == utc(2026, 12, 14, 9)
        assert not UTC_9_17.is_working_moment(utc(2026, 12, 12, 12))  # Saturday noon

    def test_holidays_are_skipped(self) -> None:
        hours = UTC_9_17.with_holidays([date(2026, 12, 14), date(2026, 12, 15)])
        assert hours.next_working_moment(utc(2026, 12, 11, 18)) == utc(2026, 12, 16, 9)
        assert not hours.is_working_moment(utc(2026, 12, 14, 10))

    def test_with_holidays_adds_and_keeps_existing(self) -> None:
        one = UTC_9_17.with_holidays([date(2026, 12, 25)])
        two = one.with_holidays([date(2026, 12, 26)])
        assert two.holidays == {date(2026, 12, 25), date(2026, 12, 26)}
        assert one.with_holidays([date(2026, 12, 25)]) is one

    def test_other_zone_uses_local_wall_time_and_returns_utc(self) -> None:
        # Brisbane is UTC+10 all year: 09:00 local is 23:00 UTC the day before.
        at = utc(2026, 12, 7, 12)  # Monday 22:00 in Brisbane
        result = BRISBANE.next_working_moment(at)
        assert result == utc(2026, 12, 7, 23)
        assert result.tzinfo is UTC
        assert result.astimezone(BRISBANE.zone).strftime("%a %H:%M") == "Tue 09:00"

    def test_weekend_is_the_local_weekend(self) -> None:
        # Friday 23:30 UTC is Saturday 09:30 in Brisbane: not a working moment there.
        assert UTC_9_17.is_working_moment(utc(2026, 12, 11, 16)) is True
        assert BRISBANE.is_working_moment(utc(2026, 12, 11, 23, 30)) is False
        assert BRISBANE.next_working_moment(utc(2026, 12, 11, 23, 30)) == utc(2026, 12, 13, 23)

    def test_daylight_saving_moves_the_utc_start(self) -> None:
        # US DST starts 2026-03-08: 08:00 in Los Angeles is 16:00 UTC before, 15:00 UTC after.
        assert LOS_ANGELES.day_start(date(2026, 3, 6)) == utc(2026, 3, 6, 16)
        assert LOS_ANGELES.day_start(date(2026, 3, 9)) == utc(2026, 3, 9, 15)
        assert LOS_ANGELES.next_working_moment(utc(2026, 3, 7, 12)) == utc(2026, 3, 9, 15)

    def test_naive_datetimes_are_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            UTC_9_17.next_working_moment(datetime(2026, 12, 7, 10))

    def test_holidays_covering_everything_fail_instead_of_looping(self) -> None:
        hours = WorkingHours(
            zone=ZoneInfo("UTC"),
            days=frozenset({0}),
            start=time(9),
            end=time(17),
            holidays=frozenset(date.fromordinal(MONDAY.toordinal() + 7 * i) for i in range(400)),
        )
        with pytest.raises(ValueError, match="no working day"):
            hours.next_working_moment(utc(2026, 12, 7, 10))


class TestWorkingDays:
    def test_shift_forward_and_back_over_weekends(self) -> None:
        friday = date(2026, 12, 11)
        assert UTC_9_17.shift_working_days(friday, 1) == date(2026, 12, 14)
        assert UTC_9_17.shift_working_days(date(2026, 12, 14), -1) == friday
        assert UTC_9_17.shift_working_days(friday, -3) == date(2026, 12, 8)
        assert UTC_9_17.shift_working_days(friday, 0) == friday

    def test_shift_from_a_weekend_day(self) -> None:
        sunday = date(2026, 12, 13)
        assert UTC_9_17.shift_working_days(sunday, 1) == date(2026, 12, 14)
        assert UTC_9_17.shift_working_days(sunday, -1) == date(2026, 12, 11)

    def test_shift_skips_holidays(self) -> None:
        hours = UTC_9_17.with_holidays([date(2026, 12, 24), date(2026, 12, 25)])
        assert hours.shift_working_days(date(2026, 12, 28), -1) == date(2026, 12, 23)
        assert hours.shift_working_days(date(2026, 12, 23), 1) == date(2026, 12, 28)

    def test_last_working_day_before_an_end(self) -> None:
        # An end during Friday's hours: Friday. An end at Monday 09:00 exactly: still Friday
        # (Monday's period does not start *before* it). An end on Sunday: Friday.
        assert UTC_9_17.last_working_day_before(utc(2026, 12, 11, 12)) == date(2026, 12, 11)
        assert UTC_9_17.last_working_day_before(utc(2026, 12, 14, 9)) == date(2026, 12, 11)
        assert UTC_9_17.last_working_day_before(utc(2026, 12, 14, 9, 1)) == date(2026, 12, 14)
        assert UTC_9_17.last_working_day_before(utc(2026, 12, 13, 23)) == date(2026, 12, 11)

    def test_last_working_day_is_local(self) -> None:
        # Sunday 23:30 UTC is Monday 09:30 in Brisbane.
        assert BRISBANE.last_working_day_before(utc(2026, 12, 13, 23, 30)) == date(2026, 12, 14)


class TestValidation:
    @pytest.mark.parametrize(
        ("days", "start", "end", "message"),
        [
            (frozenset(), time(9), time(17), "at least one"),
            (frozenset({7}), time(9), time(17), "numbered"),
            (frozenset({0}), time(17), time(9), "start before"),
            (frozenset({0}), time(9), time(9), "start before"),
        ],
    )
    def test_bad_weeks_are_refused(
        self, days: frozenset[int], start: time, end: time, message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            WorkingHours(zone=ZoneInfo("UTC"), days=days, start=start, end=end)


class TestZones:
    def test_every_windows_name_in_the_table_resolves(self) -> None:
        for windows, iana in WINDOWS_TO_IANA.items():
            zone = resolve_zone(windows)
            assert zone is not None, windows
            assert zone.key == iana

    @pytest.mark.parametrize(
        ("name", "key"),
        [
            ("Pacific Standard Time", "America/Los_Angeles"),
            ("pacific standard time", "America/Los_Angeles"),
            ("  W. Europe Standard Time ", "Europe/Berlin"),
            ("E. Australia Standard Time", "Australia/Brisbane"),
            ("India Standard Time", "Asia/Kolkata"),
            ("Europe/Paris", "Europe/Paris"),
            ("UTC", "Etc/UTC"),
            ("tzone://Microsoft/Utc", "Etc/UTC"),
        ],
    )
    def test_known_names(self, name: str, key: str) -> None:
        zone = resolve_zone(name)
        assert zone is not None
        assert zone.key == key

    @pytest.mark.parametrize(
        "name", [None, "", "  ", "Mars Standard Time", "America", "../../etc/passwd", "Europe/"]
    )
    def test_unknown_names_are_none(self, name: str | None) -> None:
        assert resolve_zone(name) is None


def _mailbox(
    zone: str = "Pacific Standard Time",
    *,
    hours_zone: Any = None,
    days: list[str] | None = None,
    start: str = "08:00:00.0000000",
    end: str = "17:00:00.0000000",
) -> dict[str, Any]:
    """A ``mailboxSettings`` body in the shape Graph (and the emulator) returns."""
    return {
        "timeZone": zone,
        "language": {"locale": "en-US", "displayName": "English (United States)"},
        "workingHours": {
            "daysOfWeek": days or ["monday", "tuesday", "wednesday", "thursday", "friday"],
            "startTime": start,
            "endTime": end,
            "timeZone": hours_zone if hours_zone is not None else {"name": zone},
        },
    }


class TestHoursFromMailbox:
    def test_graph_shape(self) -> None:
        hours = hours_from_mailbox(_mailbox(), default=UTC_9_17)
        assert hours.zone.key == "America/Los_Angeles"
        assert hours.days == frozenset(range(5))
        assert (hours.start, hours.end) == (time(8), time(17))

    def test_no_mailbox_gives_the_default(self) -> None:
        assert hours_from_mailbox(None, default=UTC_9_17) is UTC_9_17
        assert hours_from_mailbox({}, default=UTC_9_17) is UTC_9_17

    def test_working_hours_zone_wins_over_the_mailbox_zone(self) -> None:
        body = _mailbox("Pacific Standard Time", hours_zone={"name": "Tokyo Standard Time"})
        assert hours_from_mailbox(body, default=UTC_9_17).zone.key == "Asia/Tokyo"

    def test_custom_time_zone_uses_the_mailbox_zone(self) -> None:
        custom = {
            "@odata.type": "#microsoft.graph.customTimeZone",
            "bias": 480,
            "name": "Customized Time Zone",
        }
        body = _mailbox("Eastern Standard Time", hours_zone=custom)
        assert hours_from_mailbox(body, default=UTC_9_17).zone.key == "America/New_York"

    def test_unknown_zone_falls_back_to_the_default_zone(self) -> None:
        body = _mailbox("Atlantis Standard Time")
        hours = hours_from_mailbox(body, default=BRISBANE)
        assert hours.zone.key == "Australia/Brisbane"
        assert hours.start == time(8)  # the mailbox's hours still apply

    def test_only_a_zone_gives_default_hours_in_that_zone(self) -> None:
        hours = hours_from_mailbox({"timeZone": "GMT Standard Time"}, default=UTC_9_17)
        assert hours.zone.key == "Europe/London"
        assert (hours.start, hours.end, hours.days) == (time(9), time(17), frozenset(range(5)))

    def test_unusable_hours_fall_back_to_default_hours(self) -> None:
        body = _mailbox(start="18:00:00.0000000", end="09:00:00.0000000")
        hours = hours_from_mailbox(body, default=UTC_9_17)
        assert hours.zone.key == "America/Los_Angeles"
        assert (hours.start, hours.end) == (time(9), time(17))
        garbage = _mailbox(days=["funday"])
        assert hours_from_mailbox(garbage, default=UTC_9_17).days == frozenset(range(5))

    def test_other_working_days(self) -> None:
        body = _mailbox("Arab Standard Time", days=["sunday", "monday", "tuesday", "wednesday"])
        hours = hours_from_mailbox(body, default=UTC_9_17)
        assert hours.days == frozenset({6, 0, 1, 2})

    def test_default_holidays_are_kept(self) -> None:
        default = UTC_9_17.with_holidays([date(2026, 12, 25)])
        assert hours_from_mailbox(_mailbox(), default=default).holidays == {date(2026, 12, 25)}


class TestParsing:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("09:00", time(9)),
            ("8:30", time(8, 30)),
            ("17:00:00", time(17)),
            ("08:00:00.0000000", time(8)),
            ("24:00", time(23, 59, 59, 999999)),
        ],
    )
    def test_time_of_day(self, text: str, expected: time) -> None:
        assert parse_time_of_day(text) == expected

    @pytest.mark.parametrize("text", ["9", "25:00", "09:60", "nine", ""])
    def test_bad_time_of_day(self, text: str) -> None:
        with pytest.raises(ValueError, match="time of day"):
            parse_time_of_day(text)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("mon-fri", {0, 1, 2, 3, 4}),
            ("sun-thu", {6, 0, 1, 2, 3}),
            ("Mon, Wed ,fri", {0, 2, 4}),
            ("saturday", {5}),
        ],
    )
    def test_working_days(self, text: str, expected: set[int]) -> None:
        assert parse_working_days(text) == expected

    @pytest.mark.parametrize("text", ["", " , ", "mon-xyz", "weekdays"])
    def test_bad_working_days(self, text: str) -> None:
        with pytest.raises(ValueError):
            parse_working_days(text)

    def test_hour_range(self) -> None:
        assert parse_hour_range("08:30-16:30") == (time(8, 30), time(16, 30))
        with pytest.raises(ValueError, match="range"):
            parse_hour_range("08:30")
        with pytest.raises(ValueError, match="start before"):
            parse_hour_range("22:00-06:00")

    def test_working_hours_from_text(self) -> None:
        hours = parse_working_hours(
            hours="08:00-16:00", days="sun-thu", zone="Israel Standard Time"
        )
        assert hours.zone.key == "Asia/Jerusalem"
        assert hours.days == {6, 0, 1, 2, 3}
        with pytest.raises(ValueError, match="time zone"):
            parse_working_hours(zone="Nowhere/Else")


async def test_emulated_graph_mailbox_settings_of_every_demo_person() -> None:
    """The mailboxSettings bodies the emulated Graph serves (same shape as Graph) all map to the
    person's own zone, never to the fallback."""
    clock = ManualClock(datetime(2026, 12, 7, 12, tzinfo=UTC))
    tenant = demo(clock)
    identity = Identity(clock=clock, tenant_id=tenant.tenant_id, user_lookup=tenant.user_summary)
    try:
        identity.register_app(
            AppRegistration(
                client_id=DEFAULT_BOT_APP_ID,
                display_name="Access Review Bot",
                secret="test-only-secret",
                application_permissions={"User.Read.All", "MailboxSettings.Read"},
            )
        )
        graph = GraphApi(
            tenant=tenant,
            validate_token=lambda raw: identity.validate_access_token(
                raw, audience=identity.graph_audience
            ),
        )
        token = identity.issue_app_token(client_id=DEFAULT_BOT_APP_ID)
        people = [u for u in tenant.users.values() if u.mailbox is not None]
        assert len(people) >= 5
        for user in people:
            response = await graph.dispatch(
                GraphRequest(
                    method="GET",
                    version="v1.0",
                    path=f"/users/{user.id}/mailboxSettings",
                    query=[],
                    headers={"Authorization": f"Bearer {token}"},
                    body=b"",
                    origin="https://graph.emulator.test",
                )
            )
            assert response.status == 200, response.body
            # A default zone no demo person uses, so a fallback would show.
            default = WorkingHours(
                zone=ZoneInfo("Pacific/Chatham"), days=frozenset({5}), start=time(1), end=time(2)
            )
            hours = hours_from_mailbox(response.body, default=default)
            assert user.mailbox is not None
            assert hours.zone.key == WINDOWS_TO_IANA.get(
                user.mailbox.time_zone, user.mailbox.time_zone
            )
            assert hours.days == frozenset(range(5))
            assert (hours.start, hours.end) == (time(8), time(17))
    finally:
        identity.close()
