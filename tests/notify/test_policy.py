"""Reminder policy: point syntax, settings parsing with one-line errors, per-review overrides."""

from __future__ import annotations

import json
from datetime import date, time

import pytest

from bot.notify.policy import (
    DEFAULT_ESCALATION,
    DEFAULT_POINTS,
    DEFAULT_POLICY,
    POLICY_VARIABLES,
    PolicyError,
    PolicyOverride,
    PolicyPoint,
    ReminderPolicy,
    ScheduleSettings,
    parse_escalation,
    parse_holidays,
    parse_overrides,
    parse_points,
    policy_for,
)
from bot.notify.worktime import DEFAULT_WORKING_HOURS


class TestPoints:
    @pytest.mark.parametrize(
        ("text", "point"),
        [
            ("assigned", PolicyPoint("assigned")),
            (" Halfway ", PolicyPoint("halfway")),
            ("LAST-DAY", PolicyPoint("last-day")),
            ("end-3wd", PolicyPoint("end", 3)),
            ("end - 10 wd", PolicyPoint("end", 10)),
            ("start+2wd", PolicyPoint("start", 2)),
        ],
    )
    def test_parse(self, text: str, point: PolicyPoint) -> None:
        assert PolicyPoint.parse(text) == point

    def test_names_are_canonical(self) -> None:
        assert [p.name for p in parse_points("Assigned, HALFWAY,end - 3wd,start+1WD,last-day")] == [
            "assigned",
            "halfway",
            "end-3wd",
            "start+1wd",
            "last-day",
        ]
        assert str(PolicyPoint("end", 2)) == "end-2wd"

    @pytest.mark.parametrize("text", ["end-3d", "end+3wd", "start-1wd", "end-0wd", "end-91wd", "x"])
    def test_bad_points(self, text: str) -> None:
        with pytest.raises(ValueError, match=r"assigned, halfway|working days must be"):
            PolicyPoint.parse(text)

    def test_constructor_checks_counts(self) -> None:
        with pytest.raises(ValueError):
            PolicyPoint("end", 0)
        with pytest.raises(ValueError):
            PolicyPoint("halfway", 2)

    def test_default_points(self) -> None:
        assert parse_points("assigned,halfway,end-3wd,end-1wd,last-day") == DEFAULT_POINTS
        assert DEFAULT_ESCALATION == PolicyPoint("end", 2)

    def test_off_and_errors(self) -> None:
        assert parse_points("off") == ()
        assert parse_points("None") == ()
        with pytest.raises(ValueError, match="twice"):
            parse_points("end-1wd,halfway,END-1WD")
        with pytest.raises(ValueError, match="names no reminder point"):
            parse_points(" , ")

    def test_policy_refuses_duplicate_points(self) -> None:
        with pytest.raises(ValueError, match="distinct"):
            ReminderPolicy(points=(PolicyPoint("halfway"), PolicyPoint("halfway")))


class TestEscalationAndHolidays:
    def test_escalation(self) -> None:
        assert parse_escalation("off") is None
        assert parse_escalation("end-3wd") == PolicyPoint("end", 3)
        assert parse_escalation("last-day") == PolicyPoint("last-day")
        with pytest.raises(ValueError, match="cannot escalate at assignment"):
            parse_escalation("assigned")

    def test_holidays(self) -> None:
        assert parse_holidays("2026-12-25, 2026-12-26") == {date(2026, 12, 25), date(2026, 12, 26)}
        assert parse_holidays("") == frozenset()
        with pytest.raises(ValueError, match="'2026-02-30' is not a date"):
            parse_holidays("2026-02-30")
        with pytest.raises(ValueError, match="'25/12/2026' is not a date"):
            parse_holidays("2026-12-24,25/12/2026")


class TestSettings:
    def test_defaults(self) -> None:
        settings = ScheduleSettings.from_env({})
        assert settings.default_policy == DEFAULT_POLICY
        assert settings.overrides == ()
        assert settings.default_hours == DEFAULT_WORKING_HOURS

    def test_everything_set(self) -> None:
        settings = ScheduleSettings.from_env(
            {
                "REMINDER_POLICY": "assigned,end-1wd",
                "ESCALATION": "end-3wd",
                "HOLIDAYS": "2026-12-25,2026-12-26",
                "REMINDER_OVERRIDES": json.dumps({"name:Quarterly*": {"escalation": "off"}}),
                "WORKING_HOURS": "08:00-16:30",
                "WORKING_DAYS": "sun-thu",
                "DEFAULT_TIME_ZONE": "Israel Standard Time",
            }
        )
        policy = settings.default_policy
        assert [p.name for p in policy.points] == ["assigned", "end-1wd"]
        assert policy.escalation == PolicyPoint("end", 3)
        assert policy.holidays == {date(2026, 12, 25), date(2026, 12, 26)}
        hours = settings.default_hours
        assert (hours.start, hours.end) == (time(8), time(16, 30))
        assert hours.days == {6, 0, 1, 2, 3}
        assert hours.zone.key == "Asia/Jerusalem"
        quarterly = settings.policy_for("def-1", "Quarterly guest review")
        assert quarterly.escalation is None
        assert quarterly.points == policy.points  # inherited from the configured default

    def test_empty_values_mean_default(self) -> None:
        env = dict.fromkeys(POLICY_VARIABLES, "  ")
        assert ScheduleSettings.from_env(env) == ScheduleSettings()

    def test_off(self) -> None:
        settings = ScheduleSettings.from_env({"REMINDER_POLICY": "off", "ESCALATION": "OFF"})
        assert settings.default_policy.points == ()
        assert settings.default_policy.escalation is None

    @pytest.mark.parametrize(
        ("variable", "value", "expected"),
        [
            (
                "REMINDER_POLICY",
                "assigned,end-3d",
                "REMINDER_POLICY 'end-3d' is not a reminder point",
            ),
            ("ESCALATION", "assigned", "ESCALATION cannot escalate at assignment"),
            ("ESCALATION", "soon", "ESCALATION 'soon' is not a reminder point"),
            ("HOLIDAYS", "2026-13-01", "HOLIDAYS '2026-13-01' is not a date"),
            ("WORKING_HOURS", "9-5", "WORKING_HOURS has '9', which is not a time of day"),
            ("WORKING_HOURS", "17:00-09:00", "WORKING_HOURS must start before it ends"),
            ("WORKING_DAYS", "weekdays", "WORKING_DAYS has 'weekdays', which is not a day"),
            ("DEFAULT_TIME_ZONE", "Mars/Olympus", "DEFAULT_TIME_ZONE is not a known"),
            ("REMINDER_OVERRIDES", "{nope", "REMINDER_OVERRIDES is not valid JSON"),
            ("REMINDER_OVERRIDES", "[1]", "REMINDER_OVERRIDES must be a JSON object"),
        ],
    )
    def test_errors_are_one_line_naming_the_variable(
        self, variable: str, value: str, expected: str
    ) -> None:
        with pytest.raises(PolicyError) as caught:
            ScheduleSettings.from_env({variable: value})
        message = str(caught.value)
        assert message.startswith(expected), message
        assert "\n" not in message
        assert isinstance(caught.value, ValueError)
        if variable != "REMINDER_OVERRIDES":
            assert repr(value) in message  # the value given is echoed (none of these are secret)


class TestOverrides:
    def test_parse(self) -> None:
        text = json.dumps(
            {
                "11111111-2222-3333-4444-555555555555": {
                    "reminders": ["assigned", "last-day"],
                    "holidays": "2026-12-24",
                },
                "name:*guest*": {"escalation": "end-4wd"},
            }
        )
        first, second = parse_overrides(text, default=DEFAULT_POLICY)
        assert first.definition_id == "11111111-2222-3333-4444-555555555555"
        assert [p.name for p in first.policy.points] == ["assigned", "last-day"]
        assert first.policy.escalation == DEFAULT_ESCALATION
        assert first.policy.holidays == {date(2026, 12, 24)}
        assert second.name_pattern == "*guest*"
        assert second.policy.escalation == PolicyPoint("end", 4)
        assert second.policy.points == DEFAULT_POINTS

    @pytest.mark.parametrize(
        ("spec", "expected"),
        [
            ({"d1": "off"}, "entry 'd1' must map to an object"),
            ({"d1": {"remind": "off"}}, "entry 'd1' has unknown field 'remind'"),
            ({"d1": {"reminders": "end-2x"}}, "entry 'd1': 'end-2x' is not a reminder point"),
            ({"d1": {"escalation": ["end-2wd"]}}, "entry 'd1': escalation must be a string"),
            ({"d1": {"reminders": [1, 2]}}, "entry 'd1': reminders must be a string or a list"),
            ({"name: ": {}}, "entry 'name: ' has an empty name pattern"),
            ({" ": {}}, "has an empty key"),
        ],
    )
    def test_errors(self, spec: object, expected: str) -> None:
        with pytest.raises(ValueError, match="^" + expected.replace("(", r"\(")):
            parse_overrides(json.dumps(spec), default=DEFAULT_POLICY)
        with pytest.raises(PolicyError, match="^REMINDER_OVERRIDES " + expected.split("(")[0]):
            ScheduleSettings.from_env({"REMINDER_OVERRIDES": json.dumps(spec)})

    def test_policy_for_precedence(self) -> None:
        by_id = ReminderPolicy(points=(PolicyPoint("last-day"),))
        by_name = ReminderPolicy(escalation=None)
        by_other_name = ReminderPolicy(points=(PolicyPoint("halfway"),))
        overrides = (
            PolicyOverride(policy=by_name, name_pattern="Quarterly *"),
            PolicyOverride(policy=by_other_name, name_pattern="*review*"),
            PolicyOverride(policy=by_id, definition_id="DEF-1"),
        )

        def pick(definition_id: str, name: str) -> ReminderPolicy:
            return policy_for(definition_id, name, default=DEFAULT_POLICY, overrides=overrides)

        # The definition id wins although name patterns are listed first and match too.
        assert pick("def-1", "Quarterly review") is by_id
        # Among name patterns the first listed wins; matching ignores case.
        assert pick("def-2", "quarterly REVIEW") is by_name
        assert pick("def-2", "Annual review") is by_other_name
        assert pick("def-2", "Annual audit") is DEFAULT_POLICY
