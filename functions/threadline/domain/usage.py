"""Usage figures read from exact rollups: which part of a time range comes from them, which from the rows.

Threads and exchanges are counted per UTC hour, and latencies binned per UTC day and month, in the writing
transaction itself (migration 0007), so the rollups always agree with the rows. A read of [start, end) cut
into buckets takes every whole hour that lies inside one bucket from the hourly rollups and reads the rest
from the rows: the partial hours at both ends, and the hours that a bucket boundary cuts (local midnight in
a zone with a half-hour offset, such as Asia/Kolkata). Counts and sums are exact either way.

Percentiles are estimated from log-spaced histograms (DDSketch's mapping): every value of a bin lies within
1% of the bin's value, so a percentile read from the bins is within 1% of the exact nearest-rank percentile.
A span's histogram takes its whole UTC months and days from the rollups and its partial days from the rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import NamedTuple
from uuid import UUID

Range = tuple[datetime, datetime]
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# ln(1.01 / 0.99): bins of relative width 2%, so every value lies within 1% of its bin's value. The same
# constant is written in analytics_bin() (migration 0007), which is what puts values into bins.
LOG_GAMMA = 0.020000666706669435
RELATIVE_ACCURACY = 0.01
METRICS = ("latency", "first_token")


def _floor_hour(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _floor_day(t: datetime) -> datetime:
    return _floor_hour(t).replace(hour=0)


def _floor_month(t: datetime) -> datetime:
    return _floor_day(t).replace(day=1)


def _next_month(t: datetime) -> datetime:
    return t.replace(year=t.year + 1, month=1) if t.month == 12 else t.replace(month=t.month + 1)


def _whole(
    start: datetime, end: datetime, floor: Callable[[datetime], datetime], step: Callable[[datetime], datetime]
) -> list[datetime]:
    """The starts of the periods [p, step(p)) that lie wholly inside [start, end), in order."""
    p = floor(start)
    if p < start:
        p = step(p)
    starts: list[datetime] = []
    while step(p) <= end:
        starts.append(p)
        p = step(p)
    return starts


@dataclass(frozen=True, slots=True)
class HourCover:
    """How counts of [start, end) are read: whole UTC hours [hours_from, hours_to) from the hourly rollups,
    except `cut_hours`; `live` (the ends, the cut hours) from the rows."""

    hours_from: datetime
    hours_to: datetime
    cut_hours: tuple[datetime, ...]
    live: tuple[Range, ...]


def hour_cover(start: datetime, end: datetime, bounds: Iterable[datetime]) -> HourCover:
    """Split [start, end) between the hourly rollups and the rows, for buckets starting at `bounds`."""
    first, last = _floor_hour(start), _floor_hour(end)
    if first < start:
        first += HOUR
    if first >= last:
        return HourCover(first, first, (), ((start, end),))
    cut = sorted({_floor_hour(b) for b in bounds if first < b < last and b != _floor_hour(b)})
    live = [(start, first)] if start < first else []
    live += [(hour, hour + HOUR) for hour in cut]
    if last < end:
        live.append((last, end))
    return HourCover(first, last, tuple(cut), tuple(live))


@dataclass(frozen=True, slots=True)
class SpanCover:
    """How a span's histogram is read: whole UTC months and days from the binned rollups, `live` from rows."""

    months: tuple[datetime, ...]
    days: tuple[datetime, ...]
    live: tuple[Range, ...]


def span_cover(start: datetime, end: datetime) -> SpanCover:
    """Whole months, then whole days at the edges, then the partial days at the very ends."""
    months = _whole(start, end, _floor_month, _next_month)
    edges = [(start, months[0]), (_next_month(months[-1]), end)] if months else [(start, end)]
    days: list[datetime] = []
    live: list[Range] = []
    for a, b in edges:
        whole = _whole(a, b, _floor_day, lambda d: d + DAY)
        if not whole:
            live += [(a, b)] if a < b else []
            continue
        days += whole
        live += [(a, whole[0])] if a < whole[0] else []
        live += [(whole[-1] + DAY, b)] if whole[-1] + DAY < b else []
    return SpanCover(tuple(months), tuple(days), tuple(live))


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """Counts per bucket of [start, end) (bucket i starts at bounds[i]; bounds[0] <= start), and a latency
    histogram per span."""

    start: datetime
    end: datetime
    bounds: tuple[datetime, ...]
    spans: tuple[Range, ...]

    @property
    def hours(self) -> HourCover:
        """The hourly-rollup part of the counts and the rest."""
        return hour_cover(self.start, self.end, self.bounds)

    @property
    def span_covers(self) -> tuple[SpanCover, ...]:
        """The histogram parts of every span, in order."""
        return tuple(span_cover(a, b) for a, b in self.spans)


# Tallies are tuples: a year of a big project is thousands of them per request, and tuples are cheap to
# build straight from the database rows.
class ThreadTally(NamedTuple):
    """Threads of one project, bucket and category (None = unlabelled); `user_labelled` of them by a user."""

    project_id: UUID
    bucket: int
    category_id: UUID | None
    threads: int
    user_labelled: int


class ChannelTally(NamedTuple):
    """New threads of one bucket that came through one channel."""

    bucket: int
    channel: str
    threads: int


class FeedbackTally(NamedTuple):
    """Ratings of one project and bucket (by the time of each answer's first rating by a key)."""

    project_id: UUID
    bucket: int
    up: int
    down: int


@dataclass(frozen=True, slots=True)
class FeedbackCounts:
    """Up and down ratings of a stretch of time."""

    up: int = 0
    down: int = 0

    @property
    def down_rate(self) -> float | None:
        """The share of ratings that are down; None when nothing was rated."""
        rated = self.up + self.down
        return self.down / rated if rated else None


def feedback_counts(tallies: Iterable[FeedbackTally]) -> FeedbackCounts:
    """The sum of some tallies."""
    up = down = 0
    for t in tallies:
        up, down = up + t.up, down + t.down
    return FeedbackCounts(up, down)


class ExchangeTally(NamedTuple):
    """Exchanges (questions and their answers) of one project and bucket."""

    project_id: UUID
    bucket: int
    questions: int
    incomplete: int
    failed: int
    answered: int
    latency_sum_ms: int
    prompt_tokens: int
    completion_tokens: int
    unanswered: int = 0


class BinCount(NamedTuple):
    """Answers of one project and span whose `metric` (latency or first_token) fell in `bin`."""

    project_id: UUID
    span: int
    metric: str
    bin: int
    answers: int


@dataclass(frozen=True, slots=True)
class UsageRows:
    """What a UsageQuery reads, in one snapshot."""

    threads: list[ThreadTally]
    exchanges: list[ExchangeTally]
    bins: list[BinCount]
    feedback: list[FeedbackTally] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ExchangeFigures:
    """Questions and answers of a stretch of time; percentiles are estimates within 1% (None: not asked
    for, or no answer)."""

    questions: int = 0
    incomplete: int = 0
    failed: int = 0
    answered: int = 0
    latency_sum_ms: int = 0
    latency_p50_ms: int | None = None
    latency_p95_ms: int | None = None
    first_token_p50_ms: int | None = None
    first_token_p95_ms: int | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Questions the documents did not cover (no passage passed the relevance floor): coverage gaps.
    unanswered: int = 0

    @property
    def latency_avg_ms(self) -> float | None:
        """Mean answer latency over the answers that have one (exact)."""
        return round(self.latency_sum_ms / self.answered, 1) if self.answered else None


def bin_value(bin_index: int) -> int:
    """The value (ms) that stands for a bin: within 1% of every value in it. Bin -1 holds 0 ms and below."""
    if bin_index < 0:
        return 0
    gamma = math.exp(LOG_GAMMA)
    return round(2 * math.exp(bin_index * LOG_GAMMA) / (gamma + 1))


def percentile(histogram: Mapping[int, int], q: float) -> int | None:
    """The nearest-rank percentile (as SQL's percentile_disc) of the values binned in `histogram`."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = max(math.ceil(q * total), 1)
    ordered = sorted(histogram)
    return next(
        bin_value(b) for b, seen in zip(ordered, accumulate(histogram[b] for b in ordered), strict=True) if seen >= rank
    )


def exchange_figures(tallies: Iterable[ExchangeTally], bins: Iterable[BinCount] = ()) -> ExchangeFigures:
    """Sum tallies into figures; percentiles from `bins` (one project and span), None without them."""
    rows = list(tallies)
    histograms: dict[str, dict[int, int]] = {metric: {} for metric in METRICS}
    for b in bins:
        histograms[b.metric][b.bin] = histograms[b.metric].get(b.bin, 0) + b.answers
    latency, first_token = histograms["latency"], histograms["first_token"]
    return ExchangeFigures(
        questions=sum(r.questions for r in rows),
        incomplete=sum(r.incomplete for r in rows),
        failed=sum(r.failed for r in rows),
        answered=sum(r.answered for r in rows),
        latency_sum_ms=sum(r.latency_sum_ms for r in rows),
        latency_p50_ms=percentile(latency, 0.5),
        latency_p95_ms=percentile(latency, 0.95),
        first_token_p50_ms=percentile(first_token, 0.5),
        first_token_p95_ms=percentile(first_token, 0.95),
        prompt_tokens=sum(r.prompt_tokens for r in rows),
        completion_tokens=sum(r.completion_tokens for r in rows),
        unanswered=sum(r.unanswered for r in rows),
    )
