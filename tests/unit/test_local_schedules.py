"""When the local scheduler fires: rate, cron and at expressions, and the ticker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from threadline.local.deployment import Deployment, ScheduleInfo
from threadline.local.schedules import Ticker, next_fire, render_input

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 22, 3, 17, 30, tzinfo=UTC)  # a Sunday


@pytest.mark.parametrize(
    ("expression", "timezone", "expected"),
    [
        ("cron(0 8 * * ? *)", "UTC", datetime(2026, 11, 22, 8, 0, tzinfo=UTC)),
        ("cron(*/15 * * * ? *)", "UTC", datetime(2026, 11, 22, 3, 30, tzinfo=UTC)),
        ("cron(0 8 ? * MON *)", "UTC", datetime(2026, 11, 23, 8, 0, tzinfo=UTC)),
        ("cron(0 8 ? * 2 *)", "UTC", datetime(2026, 11, 23, 8, 0, tzinfo=UTC)),
        ("cron(0 9 1 JAN,JUL ? *)", "UTC", datetime(2027, 1, 1, 9, 0, tzinfo=UTC)),
        ("cron(30 3 ? * SUN-SAT 2026)", "UTC", datetime(2026, 11, 22, 3, 30, tzinfo=UTC)),
        ("cron(0 8 * * ? *)", "Europe/Paris", datetime(2026, 11, 22, 7, 0, tzinfo=UTC)),
        ("at(2026-12-01T10:00:00)", "UTC", datetime(2026, 12, 1, 10, 0, tzinfo=UTC)),
    ],
)
def test_cron_and_at_expressions_fire_at_the_next_matching_minute(
    expression: str, timezone: str, expected: datetime
) -> None:
    # Given an expression and its time zone / When the next firing after T0 is computed
    fired = next_fire(expression, T0, timezone)
    # Then it is the first matching minute after T0, in UTC
    assert fired == expected


def test_a_rate_counts_from_when_the_schedule_started() -> None:
    # Given a rate(5 minutes) schedule started at T0
    # When asked 12 minutes later
    fired = next_fire("rate(5 minutes)", T0 + timedelta(minutes=12), started=T0)
    # Then the next firing is T0 + 15 minutes
    assert fired == T0 + timedelta(minutes=15)


def test_a_past_at_never_fires_again() -> None:
    # Given a one-time schedule in the past / When its next firing is computed / Then there is none
    assert next_fire("at(2020-01-01T00:00:00)", T0) is None


@pytest.mark.parametrize(
    "expression", ["cron(0 8 L * ? *)", "cron(0 8 * * * *)", "cron(0 8 * *)", "rate(5 weeks)", "every 5 minutes"]
)
def test_unsupported_or_invalid_expressions_are_refused(expression: str) -> None:
    # Given an expression the local scheduler cannot honour / When parsed / Then it says so
    with pytest.raises(ValueError, match=r"cron|supported|exactly one"):
        next_fire(expression, T0)


def test_the_ticker_fires_due_schedules_once_per_period() -> None:
    # Given a deployment with one rate(1 minute) schedule and a clock we control
    schedule = ScheduleInfo("S", "s", frozenset({"S"}), "rate(1 minute)", "UTC", "Fn", '{"x": 1}')
    deployment = Deployment("http://unused", "us-east-1", "123", schedules={"S": schedule})
    now = [T0]
    fired: list[str] = []
    ticker = Ticker(
        deployment, now=lambda: now[0], fire_one=lambda s, when: fired.append(f"{s.logical_id}@{when:%M:%S}")
    )

    # When the clock moves 30 s, then to 60 s, then to 61 s
    runs = []
    for seconds in (30, 60, 61):
        now[0] = T0 + timedelta(seconds=seconds)
        runs.append(ticker.run_due())

    # Then it fired exactly at the minute, and not again one second later
    assert runs == [[], ["S"], []]
    assert fired == ["S@18:30"]


def test_the_input_gets_the_scheduler_context_attributes() -> None:
    # Given an Input using Scheduler's placeholders
    placeholders = {"at": "scheduled-time", "arn": "schedule-arn", "n": "attempt-number"}
    text = json.dumps({key: f"<aws.scheduler.{name}>" for key, name in placeholders.items()})

    # When it is rendered for a firing
    rendered = json.loads(render_input(text, "arn:aws:scheduler:us-east-1:1:schedule/default/s", T0))

    # Then each placeholder holds its value
    assert rendered == {
        "at": "2026-11-22T03:17:30Z",
        "arn": "arn:aws:scheduler:us-east-1:1:schedule/default/s",
        "n": "1",
    }
