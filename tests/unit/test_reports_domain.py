"""Reporting periods, analytics windows, settings validation, the PNG chart and the mail rendering."""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest

from threadline.domain import analytics, reports
from threadline.domain.chart import BAR, PEAK, TEXT, bar_chart, glyph_mask, text_width
from threadline.domain.errors import InvalidInput
from threadline.domain.report_render import change, render_mail
from threadline.domain.reports import CategoryLine, Period, ProjectRef, ProjectReport, TeamReport
from threadline.domain.usage import ExchangeFigures, FeedbackCounts


@pytest.mark.unit
@pytest.mark.parametrize(
    ("cadence", "tz", "now", "start", "end", "previous"),
    [
        (
            "weekly",
            "UTC",
            datetime(2026, 3, 16, 0, 0, tzinfo=UTC),
            date(2026, 3, 9),
            date(2026, 3, 16),
            date(2026, 3, 2),
        ),
        (
            "weekly",
            "UTC",
            datetime(2026, 3, 15, 23, 59, tzinfo=UTC),
            date(2026, 3, 2),
            date(2026, 3, 9),
            date(2026, 2, 23),
        ),
        # Sunday 12:00 UTC is already Monday in Auckland: its week has ended there
        (
            "weekly",
            "Pacific/Auckland",
            datetime(2026, 3, 15, 12, 0, tzinfo=UTC),
            date(2026, 3, 9),
            date(2026, 3, 16),
            date(2026, 3, 2),
        ),
        (
            "monthly",
            "UTC",
            datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
            date(2025, 12, 1),
            date(2026, 1, 1),
            date(2025, 11, 1),
        ),
        (
            "monthly",
            "America/Los_Angeles",
            datetime(2026, 3, 1, 5, 0, tzinfo=UTC),
            date(2026, 1, 1),
            date(2026, 2, 1),
            date(2025, 12, 1),
        ),
    ],
)
def test_last_complete_period(
    cadence: reports.Cadence, tz: str, now: datetime, start: date, end: date, previous: date
) -> None:
    period = reports.last_complete_period(cadence, tz, now)
    assert (period.start_date, period.end_date, period.previous_start_date) == (start, end, previous)
    assert period.ends_at <= now


@pytest.mark.unit
def test_period_across_a_dst_change_keeps_local_midnights() -> None:
    # Europe/Paris moves to summer time on 29 March 2026
    period = reports.last_complete_period("weekly", "Europe/Paris", datetime(2026, 3, 30, 12, 0, tzinfo=UTC))
    assert period.starts_at == datetime(2026, 3, 22, 23, 0, tzinfo=UTC)
    assert period.ends_at == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
    assert len(period.days) == 7 and period.label == "week of 2026-03-23 to 2026-03-29"


@pytest.mark.unit
def test_window_defaults_and_buckets() -> None:
    now = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)
    window = analytics.make_window(None, None, "day", "UTC", now)
    assert (window.start, window.end) == (now - timedelta(days=30), now)
    starts = analytics.bucket_starts(window)
    # A window that starts mid-day has a first, partial bucket from that day's midnight
    assert len(starts) == 31 and starts[0] == datetime(2026, 2, 14, tzinfo=UTC)


@pytest.mark.unit
def test_daily_buckets_follow_dst() -> None:
    window = analytics.make_window(
        datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC), "day", "Europe/Paris", datetime.now(UTC)
    )
    starts = analytics.bucket_starts(window)
    assert [s.hour for s in starts] == [23, 23, 22, 22]  # local midnights, before and after the change


@pytest.mark.unit
@pytest.mark.parametrize(
    ("start", "end", "interval", "tz"),
    [
        (datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), "day", "UTC"),
        (datetime(2020, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), "day", "UTC"),
        (None, None, "hour", "UTC"),
        (None, None, "day", "Not/AZone"),
        (datetime(2026, 1, 1), None, "day", "UTC"),
    ],
)
def test_invalid_windows(start: datetime | None, end: datetime | None, interval: str, tz: str) -> None:
    with pytest.raises(InvalidInput):
        analytics.make_window(start, end, interval, tz, datetime(2026, 3, 1, tzinfo=UTC))


@pytest.mark.unit
def test_a_year_of_days_is_allowed() -> None:
    end = datetime(2026, 3, 1, tzinfo=UTC)
    window = analytics.make_window(end - timedelta(days=366), end, "day", "UTC", end)
    assert len(analytics.bucket_starts(window)) == 366


@pytest.mark.unit
def test_settings_validation() -> None:
    team = uuid4()
    ok = reports.make_settings(
        team, [" a@Example.com ", "A@example.com", "b@example.org"], "weekly", "Asia/Tokyo", True
    )
    assert ok.recipients == ("a@example.com", "b@example.org")
    with pytest.raises(InvalidInput) as bad:
        reports.make_settings(team, ["a@example.com", "nope", "x@"], "weekly", "UTC", True)
    assert [i["address"] for i in bad.value.details["invalid"]] == ["nope", "x@"]  # type: ignore[index, union-attr]
    for args in (
        (["a@example.com"], "hourly", "UTC", True),
        (["a@example.com"], "weekly", "localtime", True),
        ([], "weekly", "UTC", True),
        ([f"u{i}@example.com" for i in range(51)], "weekly", "UTC", True),
    ):
        with pytest.raises(InvalidInput):
            reports.make_settings(team, *args)
    assert reports.make_settings(team, [], "monthly", "UTC", False).enabled is False


@pytest.mark.unit
@pytest.mark.parametrize(
    ("current", "previous", "text"),
    [(14, 10, "+4 (+40.0%)"), (5, 10, "-5 (-50.0%)"), (3, 0, "new"), (0, 0, "0 (0.0%)"), (7, 7, "+0 (+0.0%)")],
)
def test_change(current: int, previous: int, text: str) -> None:
    assert change(current, previous) == text


def _decode_png(png: bytes) -> tuple[int, int, list[bytes]]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    idat_len = struct.unpack(">I", png[33:37])[0]
    raw = zlib.decompress(png[41 : 41 + idat_len])
    stride = 1 + width * 3
    return width, height, [raw[i * stride + 1 : (i + 1) * stride] for i in range(height)]


def _contains_text(rows: list[bytes], text: str, region: tuple[int, int, int, int]) -> bool:
    """Whether `text`, drawn in TEXT colour, appears anywhere inside region (x0, y0, x1, y1)."""
    mask = glyph_mask(text)
    w, h = text_width(text), len(mask)
    x0, y0, x1, y1 = region
    pixel = bytes(TEXT)
    for y in range(y0, y1 - h + 1):
        for x in range(x0, x1 - w + 1):
            if all(
                (rows[y + dy][(x + dx) * 3 : (x + dx) * 3 + 3] == pixel) == mask[dy][dx]
                for dy in range(h)
                for dx in range(w)
            ):
                return True
    return False


@pytest.mark.unit
def test_bar_chart_is_a_valid_png_with_scaled_bars() -> None:
    # Given a week with a peak on the third day
    png = bar_chart([1, 2, 4, 0, 2, 0, 1], ["9", "10", "11", "12", "13", "14", "15"], width=300, height=120)
    # When it is decoded
    width, height, rows = _decode_png(png)
    # Then it has the asked size, the peak bar reaches the top tick (4) in the peak colour, and other bars do not
    assert (width, height) == (300, 120) and all(len(r) == width * 3 for r in rows)
    top_of_plot = rows[23]  # _MARGIN_TOP + 1
    assert bytes(PEAK) in top_of_plot and bytes(BAR) not in top_of_plot
    assert bytes(BAR) in rows[height - 19]  # just above the axis, every non-empty day has a bar


@pytest.mark.unit
def test_bar_chart_has_axis_labels_and_a_legend() -> None:
    # Given a week whose peak is 7 threads on the 11th
    png = bar_chart([1, 2, 7, 0, 2, 0, 1], ["9", "10", "11", "12", "13", "14", "15"], legend="threads per day")
    # When it is decoded
    width, height, rows = _decode_png(png)
    # Then the count axis is labelled (0, half and a round top above the peak) left of the plot,
    assert _contains_text(rows, "0", (0, height - 40, 40, height - 10))
    assert _contains_text(rows, "8", (0, 10, 40, 40)) and _contains_text(rows, "4", (0, 40, 40, height - 20))
    # And the days are labelled under the bars, and the legend names the series and the peak
    assert _contains_text(rows, "11", (40, height - 18, width, height))
    assert _contains_text(rows, "15", (40, height - 18, width, height))
    assert _contains_text(rows, "threads per day", (40, 0, width, 20))
    assert _contains_text(rows, "peak 7 (11)", (40, 0, width, 20))


@pytest.mark.unit
def test_bar_chart_labels_never_overlap() -> None:
    # Given a month of days, too many labels to draw them all at this width
    labels = [str(d) for d in range(1, 32)]
    png = bar_chart(list(range(31)), labels, width=300)
    # When it is decoded
    width, height, rows = _decode_png(png)
    # Then the first day is labelled and labels are thinned (31 would need more room than the plot has)
    assert _contains_text(rows, "1", (40, height - 18, 60, height))
    label_row = rows[height - 18 + 5 + 1]
    text_runs = sum(
        1
        for x in range(1, width)
        if label_row[x * 3 : x * 3 + 3] == bytes(TEXT) and label_row[(x - 1) * 3 : x * 3] != bytes(TEXT)
    )
    assert text_runs < 31


@pytest.mark.unit
def test_bar_chart_of_nothing_is_still_an_image() -> None:
    width, height, _ = _decode_png(bar_chart([]))
    assert (width, height) == (560, 180)


@pytest.mark.unit
def test_daily_period_is_yesterday_counted_per_real_hour() -> None:
    # Given 06:00 in Paris on Monday 30 March 2026, the day after the change to summer time (a 23-hour Sunday)
    period = reports.last_complete_period("daily", "Europe/Paris", datetime(2026, 3, 30, 4, 0, tzinfo=UTC))
    # When its buckets are laid out
    starts = period.bucket_starts()
    current = starts[starts.index(period.starts_at) :]
    # Then the report is Sunday against Saturday, with one bucket per real hour of each
    assert (period.start_date, period.end_date, period.previous_start_date) == (
        date(2026, 3, 29),
        date(2026, 3, 30),
        date(2026, 3, 28),
    )
    assert len(starts) == 24 + 23 and len(current) == 23
    assert [period.bucket_label(s) for s in current[:4]] == ["0h", "1h", "3h", "4h"]  # 02:00 never happened
    assert period.label == "Sunday 2026-03-29" and period.bucket_unit == "hour"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("address", "stored"),
    [("Ops@Example.com", "Ops@example.com"), ("ops@exämple.com", "ops@xn--exmple-cua.com")],
)
def test_recipients_are_stored_in_a_form_a_to_header_accepts(address: str, stored: str) -> None:
    assert reports.validate_recipients([address]) == (stored,)


@pytest.mark.unit
def test_a_recipient_that_needs_smtputf8_is_refused_by_name() -> None:
    with pytest.raises(InvalidInput) as caught:
        reports.validate_recipients(["ops@example.com", "ü@exämple.com"])
    assert [i["address"] for i in caught.value.details["invalid"]] == ["ü@exämple.com"]


@pytest.mark.unit
def test_mail_escapes_user_text_and_embeds_charts() -> None:
    # Given a report whose top question carries markup
    period = Period("weekly", "UTC", date(2026, 3, 9), date(2026, 3, 16), date(2026, 3, 2))
    project = ProjectReport(
        project=ProjectRef(uuid4(), "Docs <bot>"),
        threads=3,
        previous_threads=1,
        categories=[CategoryLine("Discovery", 2, 1)],
        unlabelled=CategoryLine("Unlabelled", 1, 0),
        top_unlabelled=[("<script>alert(1)</script>", 1)],
        figures=ExchangeFigures(),
        previous_figures=ExchangeFigures(),
        feedback=FeedbackCounts(up=3, down=1),
        previous_feedback=FeedbackCounts(),
        series=[1, 0, 0, 2, 0, 0, 0],
        series_labels=["9", "10", "11", "12", "13", "14", "15"],
    )
    # When it is rendered
    mail = render_mail(TeamReport(uuid4(), "Acme", period, [project]), "r@example.com", ("a@example.com",))
    # Then the HTML escapes it, the text keeps it readable, and the chart is referenced by cid
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html and "<script>" in mail.text
    assert 'src="cid:chart-0@threadline"' in mail.html and mail.images[0].content_id == "chart-0@threadline"
    assert "Threads: 3 (previous 1, +2 (+200.0%))" in mail.text and "Unlabelled: 1, 0, new" in mail.text
    # And both parts show the answer ratings with their down-rate
    ratings = "3 up, 1 down (25.0% down; previous 0 up, 0 down)"
    assert f"Answer ratings: {ratings}" in mail.text and ratings in mail.html
    # And both parts tell the reader how to change the settings
    assert "report-settings" in mail.text.splitlines()[-1] and "report-settings" in mail.html


@pytest.mark.unit
def test_report_counts_unanswered_questions() -> None:
    # Given a week in which 2 of 8 questions were not covered by the documents
    period = Period("weekly", "UTC", date(2026, 3, 9), date(2026, 3, 16), date(2026, 3, 2))
    project = ProjectReport(
        project=ProjectRef(uuid4(), "Docs"),
        threads=8,
        previous_threads=0,
        categories=[],
        unlabelled=CategoryLine("Unlabelled", 8, 0),
        top_unlabelled=[],
        figures=ExchangeFigures(questions=8, unanswered=2),
        previous_figures=ExchangeFigures(),
        feedback=FeedbackCounts(),
        previous_feedback=FeedbackCounts(),
        series=[8, 0, 0, 0, 0, 0, 0],
        series_labels=["9", "10", "11", "12", "13", "14", "15"],
    )
    # When it is rendered
    mail = render_mail(TeamReport(uuid4(), "Acme", period, [project]), "r@example.com", ("a@example.com",))
    # Then both parts show the coverage gaps with their share of the questions
    assert "Unanswered (not covered by the documents): 2 (25.0% of questions)" in mail.text
    assert "Unanswered (not covered by the documents)" in mail.html and "2 (25.0% of questions)" in mail.html
