"""EventBridge Scheduler schedules in the local cloud: when they are due, and a ticker that fires them.

moto stores schedules but never fires them. A due schedule invokes its target as EventBridge Scheduler
does: an asynchronous Lambda invoke (local/async_invoke.py), so a function error is retried by Lambda's
async retries and ends in the function's OnFailure destination; Scheduler's own RetryPolicy only covers a
failed hand-over, which cannot happen locally. Expressions follow Scheduler's syntax: `rate(5 minutes)`,
`cron(0 8 ? * MON *)` (minutes hours day-of-month month day-of-week year; day-of-week 1 = SUN) and
`at(2026-01-01T08:00:00)`, in the schedule's time zone.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from threadline.local.async_invoke import AsyncInvoker, AsyncOutcome
from threadline.local.deployment import Deployment, ScheduleInfo

_LOG = logging.getLogger("threadline.local.schedules")
_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_MONTHS = {m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
_DAYS = {d: i + 1 for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())}
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_SEARCH_DAYS = 366 * 5  # far enough for any cron with a year field


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    """The values one cron field allows."""
    if text in ("*", "?"):
        return frozenset(range(low, high + 1))
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, last = base.split("-", 1)
            start, end = _value(first, names), _value(last, names)
        else:
            start = _value(base, names)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high):
            raise ValueError(f"cron field {text!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _value(token: str, names: dict[str, int] | None) -> int:
    if names and token.upper() in names:
        return names[token.upper()]
    if not token.isdigit():
        # L, W and # need calendar rules the local ticker does not implement.
        raise ValueError(f"cron token {token!r} is not supported by the local scheduler")
    return int(token)


@dataclass(frozen=True)
class Cron:
    """A parsed six-field Scheduler cron expression."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int] | None  # day of month; None when given as "?"
    months: frozenset[int]
    weekdays: frozenset[int] | None  # 1 = Sunday; None when given as "?"
    years: frozenset[int]

    @classmethod
    def parse(cls, body: str) -> Cron:
        """Parse the part inside cron(...)."""
        parts = body.split()
        if len(parts) != 6:
            raise ValueError(f"cron({body}) needs six fields")
        minute, hour, dom, month, dow, year = parts
        if (dom == "?") == (dow == "?"):
            raise ValueError("exactly one of day-of-month and day-of-week must be '?'")
        return cls(
            minutes=_field(minute, 0, 59),
            hours=_field(hour, 0, 23),
            days=None if dom == "?" else _field(dom, 1, 31),
            months=_field(month, 1, 12, _MONTHS),
            weekdays=None if dow == "?" else _field(dow, 1, 7, _DAYS),
            years=_field(year, 1970, 2199),
        )

    def _day_matches(self, day: datetime) -> bool:
        if day.month not in self.months or day.year not in self.years:
            return False
        if self.days is not None:
            return day.day in self.days
        weekday = (day.isoweekday() % 7) + 1  # isoweekday: Monday 1 .. Sunday 7; cron: Sunday 1
        return self.weekdays is not None and weekday in self.weekdays

    def next_after(self, after: datetime) -> datetime | None:
        """The first matching minute strictly after `after` (an aware datetime in the schedule's zone)."""
        start = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for _ in range(_SEARCH_DAYS):
            if self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate >= start:
                            return candidate
            day = (day + timedelta(days=1)).replace(hour=0, minute=0)
        return None


def next_fire(
    expression: str, after: datetime, timezone: str = "UTC", *, started: datetime | None = None
) -> datetime | None:
    """When a schedule fires next after `after` (UTC); None when it never fires again.

    A rate counts from `started` (when the schedule was created), as Scheduler does.
    """
    zone = ZoneInfo(timezone)
    if match := _RATE.match(expression):
        period = timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")])
        origin = started or after
        elapsed = max(timedelta(0), after - origin)
        return origin + period * (elapsed // period + 1)
    if match := _CRON.match(expression):
        local = Cron.parse(match.group(1)).next_after(after.astimezone(zone))
        return local.astimezone(UTC) if local else None
    if match := _AT.match(expression):
        moment = datetime.fromisoformat(match.group(1)).replace(tzinfo=zone).astimezone(UTC)
        return moment if moment > after else None
    raise ValueError(f"unsupported schedule expression {expression!r}")


def render_input(text: str | None, schedule_arn: str, scheduled_time: datetime) -> str:
    """The Input with Scheduler's context attributes (`<aws.scheduler.scheduled-time>`, ...) filled in."""
    values = {
        "<aws.scheduler.scheduled-time>": scheduled_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "<aws.scheduler.schedule-arn>": schedule_arn,
        "<aws.scheduler.execution-id>": str(uuid.uuid4()),
        "<aws.scheduler.attempt-number>": "1",
    }
    rendered = text or "{}"
    for placeholder, value in values.items():
        rendered = rendered.replace(placeholder, value)
    return rendered


def fire(
    deployment: Deployment, invoker: AsyncInvoker, schedule: ScheduleInfo, scheduled_time: datetime | None = None
) -> AsyncOutcome:
    """Invoke the schedule's target asynchronously with its Input, as Scheduler does (now, unless a time is given)."""
    arn = f"arn:aws:scheduler:{deployment.region}:{deployment.account_id}:schedule/default/{schedule.name}"
    when = scheduled_time or datetime.now(UTC).replace(microsecond=0)
    event = render_input(schedule.input, arn, when)
    json.loads(event)  # Scheduler refuses an Input that is not JSON for a Lambda target
    return invoker.invoke(deployment.functions[schedule.target].arn, event)


class Ticker:
    """Fires the enabled schedules of a deployment when they are due (the `make dev` scheduler)."""

    def __init__(
        self,
        deployment: Deployment,
        invoker: AsyncInvoker | None = None,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        fire_one: Callable[[ScheduleInfo, datetime], object] | None = None,
    ) -> None:
        self.deployment = deployment
        self.now = now
        if fire_one is None:
            if invoker is None:
                raise ValueError("a Ticker needs an invoker or fire_one")
            fire_one = lambda schedule, when: fire(deployment, invoker, schedule, when)  # noqa: E731
        self.fire_one = fire_one
        started = now()
        self.next_at: dict[str, datetime | None] = {
            s.logical_id: next_fire(s.expression, started, s.timezone, started=started)
            for s in deployment.schedules.values()
            if s.enabled
        }
        self._started = started
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_due(self) -> list[str]:
        """Fire every schedule that is due now; returns their logical ids."""
        now = self.now()
        fired = []
        for logical_id, due in self.next_at.items():
            if due is None or due > now:
                continue
            schedule = self.deployment.schedules[logical_id]
            try:
                self.fire_one(schedule, due)
            except Exception:
                _LOG.exception("schedule %s failed", logical_id)
            fired.append(logical_id)
            self.next_at[logical_id] = next_fire(schedule.expression, now, schedule.timezone, started=self._started)
        return fired

    def _run(self) -> None:
        while not self._stop.is_set():
            self.run_due()
            upcoming = [due for due in self.next_at.values() if due is not None]
            wait_s = (min(upcoming) - self.now()).total_seconds() if upcoming else 60.0
            self._stop.wait(min(60.0, max(0.05, wait_s)))

    def start(self) -> None:
        """Fire schedules on a daemon thread until stop()."""
        self._thread = threading.Thread(target=self._run, name="schedule-ticker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop firing."""
        self._stop.set()
        if self._thread:
            self._thread.join(5.0)
