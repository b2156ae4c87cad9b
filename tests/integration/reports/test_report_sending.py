"""Team reports sent through the local SES (moto server), read back, and checked against the database."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from tests.integration.reports.conftest import Data, Seeded, estimates, sent_message, sent_raw
from threadline.bootstrap import Container
from threadline.domain import reports
from threadline.domain.report_render import render_mail
from threadline.domain.reports import RunSummary

REPO = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 3, 16, 1, 30, tzinfo=UTC)  # Monday: last week is 9-15 March, the one before 2-8 March
WEEK = datetime(2026, 3, 9, tzinfo=UTC)
BEFORE = datetime(2026, 3, 2, tzinfo=UTC)


def _enable(container: Container, team_id: UUID, cadence: str = "weekly", timezone: str = "UTC") -> None:
    reports.save_settings(container.reports, team_id, ["ops@example.com", "cto@example.com"], cadence, timezone, True)


def _run(container: Container, now: datetime = NOW, team: UUID | None = None, resend: bool = False) -> RunSummary:
    return reports.run_reports(container.report_services, now, render_mail, team_id=team, resend=resend)


def _seed_team(data: Data, name: str) -> tuple[Seeded, Seeded]:
    a = data.project(name, "Alpha")
    b = data.project(project_name="Beta", team_id=a.team_id)
    d, t = a.categories["Discovery"], a.categories["Troubleshooting"]
    for i in range(3):
        data.thread(
            a.project_id,
            WEEK + timedelta(days=i, hours=3),
            category_id=d,
            source="auto",
            exchanges=(("complete", 120 * (i + 1), 100, 40),),
        )
    data.thread(
        a.project_id,
        WEEK + timedelta(days=1),
        category_id=t,
        source="user",
        exchanges=(("incomplete", 2000, 300, 10), ("complete", 900, 310, 50)),
    )
    data.thread(
        a.project_id, WEEK + timedelta(days=2), "How do I reset my password?", exchanges=(("complete", 50, 5, 5),)
    )
    data.thread(a.project_id, WEEK + timedelta(days=4), "  how do I reset my password? ")
    data.thread(a.project_id, WEEK + timedelta(days=6, hours=23), "<b>Where</b> is billing?")
    data.thread(a.project_id, WEEK + timedelta(days=7))  # next period: not in this report
    data.thread(
        a.project_id, BEFORE + timedelta(days=1), category_id=d, source="auto", exchanges=(("complete", 80, 50, 20),)
    )
    data.thread(a.project_id, BEFORE + timedelta(days=3), "Old question")
    data.thread(b.project_id, BEFORE + timedelta(days=2))
    data.thread(b.project_id, BEFORE + timedelta(days=5), category_id=b.categories["Discovery"], source="user")
    return a, b


def _section(text: str, project: str) -> str:
    start = text.index(f"== Project: {project}")
    end = text.find("== Project:", start + 1)
    return text[start : end if end > 0 else len(text)]


def _field(section: str, name: str) -> str:
    match = re.search(rf"^{re.escape(name)}: (.*)$", section, re.MULTILINE)
    assert match, f"{name} missing in {section}"
    return match.group(1)


def _expected(data: Data, project_id: UUID, start: datetime, end: datetime) -> dict[str, Any]:
    """The report's figures, straight from SQL written independently of the adapter's."""
    with psycopg.connect(data.url) as conn:
        threads = conn.execute(
            "SELECT count(*) FROM threads WHERE project_id = %s AND created_at >= %s AND created_at < %s",
            (project_id, start, end),
        ).fetchone()
        by_category = dict(
            conn.execute(
                "SELECT coalesce(c.name, 'Unlabelled'), count(*) FROM threads t LEFT JOIN categories c"
                " ON c.id = t.category_id WHERE t.project_id = %s AND t.created_at >= %s AND t.created_at < %s"
                " GROUP BY 1",
                (project_id, start, end),
            ).fetchall()
        )
        m = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'incomplete'), sum(prompt_tokens),"
            " sum(completion_tokens), percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms)"
            " FROM messages WHERE project_id = %s AND created_at >= %s AND created_at < %s",
            (project_id, start, end),
        ).fetchone()
    assert threads is not None and m is not None
    return {
        "threads": threads[0],
        "by_category": by_category,
        "questions": m[0],
        "incomplete": m[1],
        "prompt": m[2] or 0,
        "completion": m[3] or 0,
        "p95": m[4],
    }


def _parts(message: EmailMessage) -> list[str]:
    return [part.get_content_type() for part in message.walk()]


@pytest.mark.integration
def test_report_mail_matches_the_database(mail_container: Container, data: Data, aws_endpoint: str) -> None:
    # Given a team with two projects, weekly reports on, and activity in the last two weeks
    a, _ = _seed_team(data, f"Team {uuid4().hex[:6]}")
    _enable(mail_container, a.team_id)
    # When the reports run on Monday morning
    summary = _run(mail_container)
    # Then exactly this team's report was sent, and the local SES holds it
    assert [s["team_id"] for s in summary.sent] == [str(a.team_id)] and not summary.failed
    message = sent_message(aws_endpoint, summary.sent[0]["message_id"])
    assert message["To"] == "ops@example.com, cto@example.com"
    assert "2026-03-09 to 2026-03-15" in message["Subject"]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    # And every number in it is the number SQL gives, for both projects
    for name, project in (("Alpha", a.project_id), ("Beta", None)):
        section = _section(text, name)
        pid = project or UUID(
            str(data.scalar("SELECT id FROM projects WHERE team_id = %s AND name = 'Beta'", a.team_id))
        )
        now, prev = _expected(data, pid, WEEK, WEEK + timedelta(days=7)), _expected(data, pid, BEFORE, WEEK)
        assert _field(section, "Threads").startswith(f"{now['threads']} (previous {prev['threads']}")
        assert _field(section, "Questions").startswith(f"{now['questions']} (previous {prev['questions']}")
        assert _field(section, "Incomplete answers").startswith(f"{now['incomplete']} ")
        assert _field(section, "Prompt tokens") == str(now["prompt"])
        assert _field(section, "Completion tokens") == str(now["completion"])
        p95 = _field(section, "Answer latency p95")
        assert estimates(None if p95 == "n/a" else int(p95.removesuffix(" ms")), now["p95"]), (p95, now["p95"])
        for category in ("Discovery", "Troubleshooting", "Unlabelled"):
            current, previous = now["by_category"].get(category, 0), prev["by_category"].get(category, 0)
            assert re.search(rf"^  {category}: {current}, {previous}, ", section, re.MULTILINE), (category, section)
    alpha = _section(text, "Alpha")
    assert "2 x How do I reset my password?" in alpha and "1 x <b>Where</b> is billing?" in alpha
    assert "Old question" not in alpha
    assert "Threads per day: 9: 1, 10: 2, 11: 2, 12: 0, 13: 1, 14: 0, 15: 1" in alpha
    # And it is dated, as RFC 5322 requires
    assert message["Date"] is not None and message["Date"].datetime.tzinfo is not None
    # And the HTML part shows a PNG chart per project, as related parts, with user text escaped
    assert _parts(message)[:3] == ["multipart/alternative", "text/plain", "multipart/related"]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert 'src="cid:chart-0@threadline"' in html and "&lt;b&gt;Where&lt;/b&gt;" in html and "<b>Where" not in html
    assert "Manage these reports with PUT /query/v1/team/report-settings/." in html
    images = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert [p["Content-ID"] for p in images] == ["<chart-0@threadline>", "<chart-1@threadline>"]
    assert images[0].get_content().startswith(b"\x89PNG\r\n\x1a\n")
    # And the ledger holds the SES message id
    assert (
        data.scalar("SELECT ses_message_id FROM reports WHERE team_id = %s", a.team_id) == summary.sent[0]["message_id"]
    )


@pytest.mark.integration
def test_a_period_is_reported_once_however_often_the_schedule_fires(
    mail_container: Container, data: Data, aws_endpoint: str
) -> None:
    # Given a due team
    team = f"Once {uuid4().hex[:6]}"
    a, _ = _seed_team(data, team)
    _enable(mail_container, a.team_id)
    # When the schedule fires twice at the same time from two workers, and then again an hour later
    results: list[RunSummary] = []
    workers = [threading.Thread(target=lambda: results.append(_run(mail_container))) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    later = _run(mail_container, NOW + timedelta(hours=1))
    # Then one mail was sent; the other runs skipped the team
    assert sorted(len(r.sent) for r in results) == [0, 1] and len(later.skipped) == 1
    sent = sent_raw(aws_endpoint, team)
    assert len(sent) == 1
    # And the next week's report is a new period, sent once
    assert len(_run(mail_container, NOW + timedelta(days=7)).sent) == 1


@pytest.mark.integration
def test_a_crash_after_handing_the_mail_to_ses_is_never_resent(
    mail_container: Container, data: Data, aws_endpoint: str
) -> None:
    # Given a report whose worker died while sending (its claim is 'sending' and stale)
    team = f"Crash {uuid4().hex[:6]}"
    a, _ = _seed_team(data, team)
    _enable(mail_container, a.team_id)
    period = reports.last_complete_period("weekly", "UTC", NOW)
    with psycopg.connect(data.url) as conn:
        conn.execute(
            "INSERT INTO reports (team_id, cadence, period_start, starts_at, ends_at, timezone, status, claim_token,"
            " claimed_at, sending_at) VALUES (%s, 'weekly', %s, %s, %s, 'UTC', 'sending', %s,"
            " now() - interval '1 hour', now() - interval '1 hour')",
            (a.team_id, period.start_date, period.starts_at, period.ends_at, uuid4()),
        )
    # When the schedule fires
    summary = _run(mail_container)
    # Then the report is flagged uncertain, not sent again
    assert not summary.sent and [u["team_id"] for u in summary.uncertain] == [str(a.team_id)]
    assert data.scalar("SELECT status FROM reports WHERE team_id = %s", a.team_id) == "uncertain"
    assert not sent_raw(aws_endpoint, team)
    # And an operator's deliberate resend sends it once
    resent = _run(mail_container, team=a.team_id, resend=True)
    assert len(resent.sent) == 1
    assert data.scalar("SELECT status FROM reports WHERE team_id = %s", a.team_id) == "sent"


@pytest.mark.integration
def test_a_crash_before_sending_is_taken_over(mail_container: Container, data: Data) -> None:
    # Given a claim that died while building (nothing handed to SES) and went stale
    a, _ = _seed_team(data, f"Build {uuid4().hex[:6]}")
    _enable(mail_container, a.team_id)
    period = reports.last_complete_period("weekly", "UTC", NOW)
    with psycopg.connect(data.url) as conn:
        conn.execute(
            "INSERT INTO reports (team_id, cadence, period_start, starts_at, ends_at, timezone, status, claim_token,"
            " claimed_at) VALUES (%s, 'weekly', %s, %s, %s, 'UTC', 'claimed', %s, now() - interval '1 hour')",
            (a.team_id, period.start_date, period.starts_at, period.ends_at, uuid4()),
        )
    # When the schedule fires, Then the report is sent, as attempt 2
    assert len(_run(mail_container).sent) == 1
    assert data.scalar("SELECT attempts FROM reports WHERE team_id = %s", a.team_id) == 2


@pytest.mark.integration
def test_one_teams_failure_does_not_stop_the_others(mail_container: Container, data: Data) -> None:
    # Given two due teams, one of whose settings were corrupted behind the API's back
    good, _ = _seed_team(data, f"Good {uuid4().hex[:6]}")
    bad, _ = _seed_team(data, f"Bad {uuid4().hex[:6]}")
    _enable(mail_container, good.team_id)
    _enable(mail_container, bad.team_id)
    with psycopg.connect(data.url) as conn:
        conn.execute("UPDATE report_settings SET timezone = 'Mars/Olympus' WHERE team_id = %s", (bad.team_id,))
    # When the schedule fires
    summary = _run(mail_container)
    # Then the good team got its report and the bad one is reported as failed, with the reason
    assert [s["team_id"] for s in summary.sent] == [str(good.team_id)]
    assert [f["team_id"] for f in summary.failed] == [str(bad.team_id)]
    assert "timezone" in summary.failed[0]["error"]


@pytest.mark.integration
def test_a_refused_send_is_retried_on_a_later_tick(mail_container: Container, data: Data) -> None:
    # Given a due team and a sender SES does not know
    a, _ = _seed_team(data, f"Refused {uuid4().hex[:6]}")
    _enable(mail_container, a.team_id)
    unverified = f"nobody-{uuid4().hex[:6]}@example.org"
    refused = Container(mail_container.settings.model_copy(update={"report_sender": unverified}))
    try:
        # When the schedule fires, SES refuses: the report failed and is not in flight
        first = _run(refused)
        assert [f["team_id"] for f in first.failed] == [str(a.team_id)] and "MessageRejected" in first.failed[0][
            "error"
        ]
        assert data.scalar("SELECT status FROM reports WHERE team_id = %s", a.team_id) == "failed"
        # Then once the sender is verified, the next tick sends it
        from threadline.adapters.aws.mailer import ses_client

        ses_client(refused.settings).verify_email_identity(EmailAddress=unverified)
        assert len(_run(refused, NOW + timedelta(hours=1)).sent) == 1
    finally:
        refused.close()


@pytest.mark.integration
def test_monthly_report_in_the_teams_timezone(mail_container: Container, data: Data, aws_endpoint: str) -> None:
    # Given a team in Auckland on monthly reports, with threads either side of local month boundaries
    p = data.project(f"Kiwi {uuid4().hex[:6]}", "Kiwi bot")
    reports.save_settings(mail_container.reports, p.team_id, ["ops@example.com"], "monthly", "Pacific/Auckland", True)
    data.thread(p.project_id, datetime(2026, 1, 31, 11, 30, tzinfo=UTC))  # 1 Feb 00:30 in Auckland: February
    data.thread(p.project_id, datetime(2026, 1, 31, 10, 30, tzinfo=UTC))  # 31 Jan 23:30 in Auckland: January
    data.thread(p.project_id, datetime(2026, 2, 28, 10, 30, tzinfo=UTC))  # 28 Feb 23:30 in Auckland: February
    # When the schedule fires early on 1 March, local time (still February in UTC)
    summary = _run(mail_container, datetime(2026, 2, 28, 12, 0, tzinfo=UTC))
    # Then February (local) was reported, with January as the previous period
    assert [s["period_start"] for s in summary.sent] == ["2026-02-01"]
    text = sent_message(aws_endpoint, summary.sent[0]["message_id"]).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Period: February 2026" in text and "Threads: 2 (previous 1, +1 (+100.0%))" in text


@pytest.mark.integration
def test_daily_report_counts_yesterday_per_local_hour(mail_container: Container, data: Data, aws_endpoint: str) -> None:
    # Given a team in New York on daily reports, with threads on Tuesday 10 March (local) and the day before
    p = data.project(f"Daily {uuid4().hex[:6]}", "Daily bot")
    reports.save_settings(mail_container.reports, p.team_id, ["ops@example.com"], "daily", "America/New_York", True)
    data.thread(p.project_id, datetime(2026, 3, 10, 13, 5, tzinfo=UTC))  # 09:05 local on Tuesday
    data.thread(p.project_id, datetime(2026, 3, 10, 13, 55, tzinfo=UTC))  # 09:55 local on Tuesday
    data.thread(p.project_id, datetime(2026, 3, 11, 3, 59, tzinfo=UTC))  # 23:59 local on Tuesday
    data.thread(p.project_id, datetime(2026, 3, 11, 4, 1, tzinfo=UTC))  # Wednesday already: not in the report
    data.thread(p.project_id, datetime(2026, 3, 9, 15, 0, tzinfo=UTC))  # Monday: the previous day
    # When the schedule fires at 06:00 local on Wednesday
    summary = _run(mail_container, datetime(2026, 3, 11, 10, 0, tzinfo=UTC))
    # Then Tuesday was reported against Monday, counted per local hour
    assert [s["period_start"] for s in summary.sent] == ["2026-03-10"]
    message = sent_message(aws_endpoint, summary.sent[0]["message_id"])
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Period: Tuesday 2026-03-10" in text and "Threads: 3 (previous 1, +2 (+200.0%))" in text
    hours = _field(text, "Threads per hour").split(", ")
    assert len(hours) == 24 and hours[9] == "9h: 2" and hours[23] == "23h: 1" and hours[0] == "0h: 0"
    assert "daily report, Tuesday 2026-03-10" in message["Subject"]


@pytest.mark.integration
def test_handler_runs_a_tick_from_the_sample_event(
    mail_container: Container, data: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a due team and the handler wired to the test's container
    from threadline.handlers import report

    a, _ = _seed_team(data, f"Handler {uuid4().hex[:6]}")
    _enable(mail_container, a.team_id)
    monkeypatch.setattr(report, "get_container", lambda: mail_container)
    event = json.loads((REPO / "events" / "schedule" / "report_tick.json").read_text())
    event["scheduled_time"] = NOW.isoformat()

    class Context:
        function_name, memory_limit_in_mb, aws_request_id = "ReportFunction", 512, "req-1"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ReportFunction"

    # When the tick is delivered twice (a Scheduler retry)
    first = report.lambda_handler(event, Context())
    second = report.lambda_handler(event, Context())
    # Then the first sent the report and the second skipped it
    assert first["counts"]["sent"] == 1 and second["counts"] == {"sent": 0, "skipped": 1, "failed": 0, "uncertain": 0}
