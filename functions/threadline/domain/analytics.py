"""Usage analytics of one project: volume, categories, label sources, answer quality, per interval.

Time boundaries are half-open, `from <= created_at < to`, on `threads.created_at` (threads, categories,
label sources) and `messages.created_at` (questions, answers): the same predicates as the thread listing
with a time filter, so a listing over the same range counts the same threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol
from uuid import UUID
from zoneinfo import ZoneInfo

from threadline.domain.channels import CHANNELS
from threadline.domain.errors import InvalidInput
from threadline.domain.timezones import parse_timezone
from threadline.domain.usage import (
    ChannelTally,
    ExchangeFigures,
    ExchangeTally,
    FeedbackCounts,
    FeedbackTally,
    UsageQuery,
    UsageRows,
    exchange_figures,
    feedback_counts,
)

Interval = Literal["day", "week"]
INTERVALS: tuple[Interval, ...] = ("day", "week")
DEFAULT_RANGE = timedelta(days=30)
# Two years of days is 731 points: enough for a year-over-year view, bounded for the response size.
MAX_RANGE = timedelta(days=731)


@dataclass(frozen=True, slots=True)
class AnalyticsWindow:
    """A validated request: [start, end) cut into `interval` buckets of the local calendar of `timezone`."""

    start: datetime
    end: datetime
    interval: Interval
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        """The timezone as a tzinfo."""
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class CategoryRef:
    """A category's id and name."""

    id: UUID
    name: str


@dataclass(frozen=True, slots=True)
class AnalyticsRows:
    """A project's categories and its usage over a window, read in one snapshot."""

    categories: list[CategoryRef]
    usage: UsageRows
    channels: list[ChannelTally] = field(default_factory=list)


class AnalyticsRepository(Protocol):
    """The reads analytics needs."""

    def read(self, project_id: UUID, query: UsageQuery) -> AnalyticsRows: ...


@dataclass(frozen=True, slots=True)
class Bucket:
    """One interval of the series, zero-filled."""

    start: datetime
    threads: int = 0
    unlabelled: int = 0
    by_category: dict[UUID, int] = field(default_factory=dict)
    figures: ExchangeFigures = field(default_factory=ExchangeFigures)
    by_channel: dict[str, int] = field(default_factory=dict)
    feedback: FeedbackCounts = field(default_factory=FeedbackCounts)


@dataclass(frozen=True, slots=True)
class ProjectAnalytics:
    """Everything the analytics endpoint returns."""

    project_id: UUID
    window: AnalyticsWindow
    categories: list[CategoryRef]
    buckets: list[Bucket]
    category_totals: dict[UUID, int]
    unlabelled: int
    label_sources: dict[str, int]
    totals: ExchangeFigures
    channel_totals: dict[str, int] = field(default_factory=dict)
    feedback: FeedbackCounts = field(default_factory=FeedbackCounts)

    @property
    def threads(self) -> int:
        """All threads created in the window."""
        return sum(b.threads for b in self.buckets)


def make_window(
    start: datetime | None,
    end: datetime | None,
    interval: str,
    timezone: str,
    now: datetime,
) -> AnalyticsWindow:
    """Validate a request: defaults to the last 30 days; `from < to`; at most MAX_RANGE; known interval and zone."""
    if interval not in INTERVALS:
        raise InvalidInput("interval must be 'day' or 'week'", field="interval", value=interval)
    parse_timezone(timezone)
    end = _aware(end, "to") if end is not None else now
    start = _aware(start, "from") if start is not None else end - DEFAULT_RANGE
    if start >= end:
        raise InvalidInput("'from' must be before 'to'", field="from")
    if end - start > MAX_RANGE:
        raise InvalidInput(f"the range may span at most {MAX_RANGE.days} days", field="to", max_days=MAX_RANGE.days)
    return AnalyticsWindow(start=start, end=end, interval=interval, timezone=timezone)  # type: ignore[arg-type]


def _aware(value: datetime, name: str) -> datetime:
    # A bare timestamp would be read in the server's zone; refusing it keeps every boundary unambiguous.
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"'{name}' needs a UTC offset, e.g. 2026-01-01T00:00:00Z", field=name)
    return value.astimezone(UTC)


def bucket_starts(window: AnalyticsWindow) -> list[datetime]:
    """The start of every bucket that overlaps the window, in UTC; days and weeks follow the local calendar."""
    zone = window.zone
    local = window.start.astimezone(zone)
    day = local.date()
    if window.interval == "week":
        day -= timedelta(days=day.weekday())
    step = timedelta(days=1 if window.interval == "day" else 7)
    starts: list[datetime] = []
    while True:
        # Adding days to the local date (not to the instant) keeps buckets on local midnights across DST.
        instant = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
        if instant >= window.end:
            return starts
        starts.append(instant)
        day += step


def usage_query(window: AnalyticsWindow) -> UsageQuery:
    """The usage read of a window: counts per bucket, one histogram for the whole window."""
    return UsageQuery(
        start=window.start, end=window.end, bounds=tuple(bucket_starts(window)), spans=((window.start, window.end),)
    )


def project_analytics(repo: AnalyticsRepository, project_id: UUID, window: AnalyticsWindow) -> ProjectAnalytics:
    """Aggregate one project's window into a zero-filled series and totals."""
    query = usage_query(window)
    rows = repo.read(project_id, query)
    categories, usage = rows.categories, rows.usage
    known = {c.id for c in categories}
    per_bucket: list[dict[UUID | None, int]] = [{} for _ in query.bounds]
    label_sources = {"auto": 0, "user": 0, "none": 0}
    for row in usage.threads:
        # A category id that is not (or no longer) listed is reported as unlabelled, as the listing does.
        key = row.category_id if row.category_id in known else None
        slot = per_bucket[row.bucket]
        slot[key] = slot.get(key, 0) + row.threads
        if row.category_id is None:
            label_sources["none"] += row.threads
        else:
            label_sources["user"] += row.user_labelled
            label_sources["auto"] += row.threads - row.user_labelled
    exchanges: list[list[ExchangeTally]] = [[] for _ in query.bounds]
    for tally in usage.exchanges:
        exchanges[tally.bucket].append(tally)
    # Every known channel in every bucket, zero-filled, so a client can stack them without guessing keys.
    per_channel: list[dict[str, int]] = [dict.fromkeys(CHANNELS, 0) for _ in query.bounds]
    for channel_row in rows.channels:
        slot_channels = per_channel[channel_row.bucket]
        slot_channels[channel_row.channel] = slot_channels.get(channel_row.channel, 0) + channel_row.threads
    ratings: list[list[FeedbackTally]] = [[] for _ in query.bounds]
    for rating in usage.feedback:
        ratings[rating.bucket].append(rating)
    buckets = [
        Bucket(
            start=start,
            threads=sum(slot.values()),
            unlabelled=slot.get(None, 0),
            by_category={c.id: slot.get(c.id, 0) for c in categories},
            figures=exchange_figures(tallies),
            by_channel=channels,
            feedback=feedback_counts(rated),
        )
        for start, slot, tallies, channels, rated in zip(
            query.bounds, per_bucket, exchanges, per_channel, ratings, strict=True
        )
    ]
    category_totals = {c.id: sum(b.by_category[c.id] for b in buckets) for c in categories}
    return ProjectAnalytics(
        project_id=project_id,
        window=window,
        categories=categories,
        buckets=buckets,
        category_totals=category_totals,
        unlabelled=sum(b.unlabelled for b in buckets),
        label_sources=label_sources,
        totals=exchange_figures(usage.exchanges, usage.bins),
        channel_totals={c: sum(b.by_channel.get(c, 0) for b in buckets) for c in CHANNELS},
        feedback=feedback_counts(usage.feedback),
    )
