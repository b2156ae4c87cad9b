"""What a usage read takes from the rollups and what from the rows; percentiles from log-spaced bins."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from uuid import uuid4

import pytest

from threadline.domain import analytics
from threadline.domain.usage import (
    HOUR,
    LOG_GAMMA,
    RELATIVE_ACCURACY,
    BinCount,
    ExchangeTally,
    bin_value,
    exchange_figures,
    hour_cover,
    percentile,
    span_cover,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _bin(ms: int) -> int:
    # The specification that analytics_bin() in migration 0007 implements (an integration test holds it to it).
    return -1 if ms < 1 else math.ceil(math.log(ms) / LOG_GAMMA)


def _window(start: datetime, end: datetime, tz: str, interval: str = "day") -> analytics.AnalyticsWindow:
    return analytics.make_window(start, end, interval, tz, NOW)


def _covered(
    cover_hours: tuple[datetime, datetime], cut: tuple[datetime, ...], live: tuple[tuple[datetime, datetime], ...]
) -> list[tuple[datetime, datetime]]:
    pieces = list(live)
    hour = cover_hours[0]
    while hour < cover_hours[1]:
        if hour not in cut:
            pieces.append((hour, hour + HOUR))
        hour += HOUR
    return sorted(pieces)


def _assert_partition(pieces: list[tuple[datetime, datetime]], start: datetime, end: datetime) -> None:
    assert pieces[0][0] == start and pieces[-1][1] == end
    for (_, a_end), (b_start, _) in pairwise(pieces):
        assert a_end == b_start  # no gap, no overlap


@pytest.mark.unit
@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns"])
def test_hour_cover_partitions_the_window_and_never_spans_a_bucket_boundary(tz: str) -> None:
    # Given windows with ragged edges over a DST change, by day and by week
    rng = random.Random(tz)
    for interval in ("day", "week"):
        for _ in range(20):
            start = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(0, 40 * 86_400))
            end = start + timedelta(seconds=rng.randrange(1, 60 * 86_400))
            window = _window(start, end, tz, interval)
            bounds = analytics.bucket_starts(window)
            # When it is covered
            cover = hour_cover(window.start, window.end, bounds)
            # Then rollup hours and row ranges together are exactly the window
            _assert_partition(_covered((cover.hours_from, cover.hours_to), cover.cut_hours, cover.live), start, end)
            # And no rollup hour has a bucket boundary strictly inside it
            for b in bounds:
                hour = b.replace(minute=0, second=0, microsecond=0)
                if b != hour and cover.hours_from <= hour < cover.hours_to:
                    assert hour in cover.cut_hours


@pytest.mark.unit
def test_half_hour_zones_read_the_hour_around_each_local_midnight_from_the_rows() -> None:
    # Given a week of days in India (UTC+05:30): local midnight is 18:30 UTC
    start = datetime(2026, 3, 1, 18, 30, tzinfo=UTC)
    window = _window(start, start + timedelta(days=7), "Asia/Kolkata")
    cover = hour_cover(window.start, window.end, analytics.bucket_starts(window))
    # Then the six inner midnights cut six hours, and the window's half hours at each end are read too
    assert cover.cut_hours == tuple(datetime(2026, 3, d, 18, tzinfo=UTC) for d in range(2, 8))
    assert cover.live[0] == (start, start + timedelta(minutes=30))
    assert cover.live[-1] == (datetime(2026, 3, 8, 18, tzinfo=UTC), window.end)


@pytest.mark.unit
def test_whole_hour_zones_read_only_the_ragged_edges_from_the_rows() -> None:
    start, end = datetime(2026, 3, 1, 5, 0, 1, tzinfo=UTC), datetime(2026, 3, 20, 4, 59, tzinfo=UTC)
    window = _window(start, end, "America/New_York")
    cover = hour_cover(window.start, window.end, analytics.bucket_starts(window))
    assert cover.cut_hours == ()
    assert cover.live == ((start, datetime(2026, 3, 1, 6, tzinfo=UTC)), (datetime(2026, 3, 20, 4, tzinfo=UTC), end))


@pytest.mark.unit
def test_a_window_inside_one_hour_is_read_from_the_rows() -> None:
    start = datetime(2026, 3, 1, 10, 5, tzinfo=UTC)
    cover = hour_cover(start, start + timedelta(minutes=50), [start])
    assert cover.hours_from == cover.hours_to and cover.live == ((start, start + timedelta(minutes=50)),)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("start", "end", "months", "days"),
    [
        # a year from a ragged instant: 11 whole months, the days around them, partial days at both ends
        (datetime(2025, 6, 14, 9, 30, tzinfo=UTC), datetime(2026, 6, 14, 9, 30, tzinfo=UTC), 11, 16 + 13),
        # a local week in Tokyo: no whole month, six whole UTC days, partial days at the ends
        (datetime(2026, 3, 8, 15, tzinfo=UTC), datetime(2026, 3, 15, 15, tzinfo=UTC), 0, 6),
        # exactly one calendar month: nothing else
        (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC), 1, 0),
        # a few minutes
        (datetime(2026, 2, 1, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, 1, 9, tzinfo=UTC), 0, 0),
    ],
)
def test_span_cover_partitions_the_span(start: datetime, end: datetime, months: int, days: int) -> None:
    cover = span_cover(start, end)
    assert (len(cover.months), len(cover.days)) == (months, days)
    pieces = [(m, (m + timedelta(days=32)).replace(day=1)) for m in cover.months]
    pieces += [(d, d + timedelta(days=1)) for d in cover.days] + list(cover.live)
    _assert_partition(sorted(pieces), start, end)
    assert all(b - a < timedelta(days=1) for a, b in cover.live)


@pytest.mark.unit
def test_every_value_lies_within_one_percent_of_its_bins_value() -> None:
    for ms in [*range(0, 5000), *range(5000, 3_000_000, 997)]:
        assert abs(bin_value(_bin(ms)) - ms) <= RELATIVE_ACCURACY * ms + 0.5, ms


@pytest.mark.unit
@pytest.mark.parametrize("seed", range(5))
def test_percentiles_from_bins_are_within_one_percent_of_the_exact_nearest_rank(seed: int) -> None:
    # Given latencies of a realistic spread, a few extremes included
    rng = random.Random(seed)
    values = [int(rng.lognormvariate(7.2, 0.8)) for _ in range(rng.randrange(1, 3000))] + [0, 1, 250_000]
    histogram: dict[int, int] = {}
    for v in values:
        histogram[_bin(v)] = histogram.get(_bin(v), 0) + 1
    ordered = sorted(values)
    for q in (0.01, 0.5, 0.9, 0.95, 0.99, 1.0):
        exact = ordered[max(math.ceil(q * len(ordered)) - 1, 0)]
        estimate = percentile(histogram, q)
        assert estimate is not None and abs(estimate - exact) <= RELATIVE_ACCURACY * exact + 0.5, (q, exact, estimate)


@pytest.mark.unit
def test_no_values_no_percentile() -> None:
    assert percentile({}, 0.5) is None and percentile({12: 0}, 0.95) is None


@pytest.mark.unit
def test_exchange_figures_sum_tallies_and_estimate_from_bins() -> None:
    project = uuid4()
    tallies = [ExchangeTally(project, 0, 3, 1, 0, 2, 500, 30, 60), ExchangeTally(project, 1, 2, 0, 1, 1, 1000, 10, 5)]
    bins = [BinCount(project, 0, "latency", _bin(200), 2), BinCount(project, 0, "latency", _bin(1000), 1)]
    figures = exchange_figures(tallies, bins)
    assert (figures.questions, figures.incomplete, figures.failed, figures.answered) == (5, 1, 1, 3)
    assert (figures.latency_sum_ms, figures.prompt_tokens, figures.completion_tokens) == (1500, 40, 65)
    assert figures.latency_avg_ms == 500.0
    assert figures.latency_p50_ms == bin_value(_bin(200)) and figures.latency_p95_ms == bin_value(_bin(1000))
    assert figures.first_token_p50_ms is None
    assert exchange_figures(tallies).latency_p95_ms is None
