# Over 350 lines: one feature, callers use `reports.X` for all of it; its sections (periods, sending) are the seams.
"""Scheduled usage reports: per-team settings, reporting periods, the report itself, and sending it once.

At most one report per team and period: a worker claims the (team, cadence, period) row BEFORE it
builds or sends anything, marks it `sending` right before handing the mail to SES, and `sent` with the
SES message id after. A claim that died in `claimed` (nothing handed to SES) is taken over once its
lease is stale; one that died in `sending` may or may not have reached SES, so it turns `uncertain` and
is never resent automatically: a rare missing report is preferred to a duplicate, and an operator can
resend it deliberately.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal, Protocol
from uuid import UUID
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError, validate_email

from threadline.domain.analytics import CategoryRef
from threadline.domain.errors import DomainError, InvalidInput
from threadline.domain.timezones import parse_timezone
from threadline.domain.usage import (
    ExchangeFigures,
    FeedbackCounts,
    UsageQuery,
    UsageRows,
    exchange_figures,
    feedback_counts,
)

Cadence = Literal["daily", "weekly", "monthly"]
CADENCES: tuple[Cadence, ...] = ("daily", "weekly", "monthly")
MAX_RECIPIENTS = 50  # SES accepts at most 50 destinations per message
# Longer than ReportFunction's timeout, so a live worker never loses its claim to another.
CLAIM_LEASE = timedelta(minutes=15)
# A team whose mail SES keeps refusing (unverified sender, bad address) stops being retried every hour.
MAX_ATTEMPTS = 5
TOP_UNLABELLED = 5


class MailNotSent(DomainError):
    """The mail service refused the message: it was certainly not sent, so retrying is safe."""

    code = "mail_not_sent"


class MailOutcomeUnknown(DomainError):
    """The mail service may or may not have accepted the message (timeout, lost connection)."""

    code = "mail_outcome_unknown"


@dataclass(frozen=True, slots=True)
class ReportSettings:
    """Who gets a team's report, how often, and in which timezone periods start."""

    team_id: UUID
    recipients: tuple[str, ...] = ()
    cadence: Cadence = "weekly"
    timezone: str = "UTC"
    enabled: bool = False
    updated_at: datetime | None = None


class ReportSettingsRepository(Protocol):
    """Storage of report settings."""

    def get_report_settings(self, team_id: UUID) -> ReportSettings | None: ...

    def put_report_settings(self, settings: ReportSettings) -> ReportSettings: ...

    def enabled_report_settings(self, team_id: UUID | None = None) -> list[ReportSettings]: ...


def validate_recipients(recipients: Sequence[str]) -> tuple[str, ...]:
    """Normalised, de-duplicated addresses; raises InvalidInput naming every bad one.

    SES has no SMTPUTF8: a non-ASCII local part (`ü@example.com`) cannot be mailed and is refused, while an
    internationalised domain is kept in its ASCII (IDNA) form, the one a `To:` header and SES accept.
    """
    cleaned: list[str] = []
    invalid: list[dict[str, str]] = []
    for raw in recipients:
        try:
            normalized = validate_email(raw.strip(), check_deliverability=False, allow_smtputf8=False).ascii_email
            if normalized is None:  # not produced for addresses that need SMTPUTF8, which are refused above
                raise EmailNotValidError("the address cannot be written in ASCII")
        except EmailNotValidError as exc:
            invalid.append({"address": raw, "reason": str(exc)})
            continue
        if normalized.lower() not in (c.lower() for c in cleaned):
            cleaned.append(normalized)
    if invalid:
        raise InvalidInput("invalid email address", field="recipients", invalid=invalid)
    if len(cleaned) > MAX_RECIPIENTS:
        raise InvalidInput(f"at most {MAX_RECIPIENTS} recipients", field="recipients")
    return tuple(cleaned)


def make_settings(
    team_id: UUID, recipients: Sequence[str], cadence: str, timezone: str, enabled: bool
) -> ReportSettings:
    """Validate a full set of report settings."""
    if cadence not in CADENCES:
        raise InvalidInput("cadence must be one of: " + ", ".join(CADENCES), field="cadence", value=cadence)
    parse_timezone(timezone)
    addresses = validate_recipients(recipients)
    if enabled and not addresses:
        raise InvalidInput("enabled reports need at least one recipient", field="recipients")
    return ReportSettings(team_id, addresses, cadence, timezone, enabled)  # type: ignore[arg-type]


def current_settings(repo: ReportSettingsRepository, team_id: UUID) -> ReportSettings:
    """A team's settings, or the defaults (reports off) when it never set any."""
    return repo.get_report_settings(team_id) or ReportSettings(team_id=team_id)


def save_settings(
    repo: ReportSettingsRepository, team_id: UUID, recipients: Sequence[str], cadence: str, timezone: str, enabled: bool
) -> ReportSettings:
    """Validate and store a team's settings (a full replacement)."""
    return repo.put_report_settings(make_settings(team_id, recipients, cadence, timezone, enabled))


# --- periods ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """A complete reporting period [starts_at, ends_at) and the one before it, in a team's timezone."""

    cadence: Cadence
    timezone: str
    start_date: date
    end_date: date
    previous_start_date: date

    @property
    def zone(self) -> ZoneInfo:
        """The timezone as a tzinfo."""
        return ZoneInfo(self.timezone)

    def instant(self, day: date) -> datetime:
        """Local midnight at the start of `day`, in UTC."""
        return datetime(day.year, day.month, day.day, tzinfo=self.zone).astimezone(UTC)

    @property
    def starts_at(self) -> datetime:
        """Local midnight of the first day, in UTC."""
        return self.instant(self.start_date)

    @property
    def ends_at(self) -> datetime:
        """Local midnight after the last day, in UTC (exclusive)."""
        return self.instant(self.end_date)

    @property
    def previous_starts_at(self) -> datetime:
        """Start of the period before, which ends where this one starts."""
        return self.instant(self.previous_start_date)

    @property
    def days(self) -> list[date]:
        """Every local day of the period."""
        return [self.start_date + timedelta(days=i) for i in range((self.end_date - self.start_date).days)]

    @property
    def label(self) -> str:
        """Human name: "Monday 2026-11-09", "week of 2026-11-09 to 2026-11-15" or "October 2026"."""
        if self.cadence == "daily":
            return f"{self.start_date.strftime('%A')} {self.start_date.isoformat()}"
        if self.cadence == "monthly":
            return self.start_date.strftime("%B %Y")
        last = self.end_date - timedelta(days=1)
        return f"week of {self.start_date.isoformat()} to {last.isoformat()}"

    @property
    def bucket_unit(self) -> str:
        """What one bar of the report's chart counts: an hour of a daily report, else a day."""
        return "hour" if self.cadence == "daily" else "day"

    def bucket_starts(self) -> tuple[datetime, ...]:
        """Starts (UTC) of the chart's buckets over the period before and this one, in order.

        Daily reports count per real hour (a local day of a DST change has 23 or 25), the others per local day.
        """
        if self.cadence == "daily":
            hours = int((self.ends_at - self.previous_starts_at) / timedelta(hours=1))
            return tuple(self.previous_starts_at + timedelta(hours=i) for i in range(hours))
        days = (self.end_date - self.previous_start_date).days
        return tuple(self.instant(self.previous_start_date + timedelta(days=i)) for i in range(days))

    def bucket_label(self, start: datetime) -> str:
        """A bar's label: the local hour ("13h") or the local day of the month ("9")."""
        local = start.astimezone(self.zone)
        return f"{local.hour}h" if self.cadence == "daily" else str(local.day)


def _month_start(day: date, months_back: int) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def last_complete_period(cadence: Cadence, timezone: str, now: datetime) -> Period:
    """The latest period that has ended at `now` in `timezone` (weeks start on Monday)."""
    today = now.astimezone(parse_timezone(timezone)).date()
    if cadence == "daily":
        end = today
        start, previous = end - timedelta(days=1), end - timedelta(days=2)
    elif cadence == "weekly":
        end = today - timedelta(days=today.weekday())
        start, previous = end - timedelta(days=7), end - timedelta(days=14)
    else:
        end, start, previous = _month_start(today, 0), _month_start(today, 1), _month_start(today, 2)
    return Period(cadence, timezone, start, end, previous)


# --- the report ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProjectRef:
    """A project's id and name."""

    id: UUID
    name: str


@dataclass(frozen=True, slots=True)
class QuestionCount:
    """An unlabelled first question and how many threads asked it (case and outer spaces ignored)."""

    project_id: UUID
    question: str
    threads: int


@dataclass(frozen=True, slots=True)
class TeamReportRows:
    """Every aggregate of a team report, read in one snapshot."""

    team_name: str
    projects: list[ProjectRef]
    categories: dict[UUID, list[CategoryRef]]
    usage: UsageRows
    questions: list[QuestionCount]


class ReportDataSource(Protocol):
    """The aggregate reads of a team report: a handful of set-based queries over all its projects."""

    def read_team(self, team_id: UUID, period: Period, usage: UsageQuery, top_questions: int) -> TeamReportRows:
        """The team, its projects and categories, `usage` of all its projects, the period's top unlabelled
        questions."""
        ...


@dataclass(frozen=True, slots=True)
class CategoryLine:
    """One category's threads in the period and the one before."""

    name: str
    threads: int
    previous: int


@dataclass(frozen=True, slots=True)
class ProjectReport:
    """One project's part of a report."""

    project: ProjectRef
    threads: int
    previous_threads: int
    categories: list[CategoryLine]
    unlabelled: CategoryLine
    top_unlabelled: list[tuple[str, int]]
    figures: ExchangeFigures
    previous_figures: ExchangeFigures
    # Answer ratings in the period and the one before (by each first rating's time).
    feedback: FeedbackCounts
    previous_feedback: FeedbackCounts
    # Threads per bucket of the period (per local day; per hour in a daily report) and the buckets' labels.
    series: list[int]
    series_labels: list[str]


@dataclass(frozen=True, slots=True)
class TeamReport:
    """A team's report for one period."""

    team_id: UUID
    team_name: str
    period: Period
    projects: list[ProjectReport]


# The spans of usage_query(period), in this order: the period before, then the period itself.
PREVIOUS_SPAN, CURRENT_SPAN = 0, 1


def usage_query(period: Period) -> UsageQuery:
    """Counts per bucket (local day, or hour for daily reports) of the period and the one before; one latency
    histogram for each of the two."""
    return UsageQuery(
        start=period.previous_starts_at,
        end=period.ends_at,
        bounds=period.bucket_starts(),
        spans=((period.previous_starts_at, period.starts_at), (period.starts_at, period.ends_at)),
    )


def build_team_report(source: ReportDataSource, team_id: UUID, period: Period) -> TeamReport:
    """Gather every figure of a team's report (the reads cover all its projects at once)."""
    query = usage_query(period)
    rows = source.read_team(team_id, period, query, TOP_UNLABELLED)
    return TeamReport(
        team_id=team_id,
        team_name=rows.team_name,
        period=period,
        projects=[
            _project_report(p, period, rows.categories.get(p.id, []), rows.usage, rows.questions) for p in rows.projects
        ],
    )


def _project_report(
    project: ProjectRef,
    period: Period,
    categories: list[CategoryRef],
    usage: UsageRows,
    questions: list[QuestionCount],
) -> ProjectReport:
    # Buckets are those of usage_query(period): the period before, then this one.
    bounds = period.bucket_starts()
    first_current = bounds.index(period.starts_at)
    known = {c.id for c in categories}
    tally: dict[tuple[bool, UUID | None], int] = {}
    per_bucket: dict[int, int] = {}
    for row in usage.threads:
        if row.project_id == project.id:
            current = row.bucket >= first_current
            key = (current, row.category_id if row.category_id in known else None)
            tally[key] = tally.get(key, 0) + row.threads
            per_bucket[row.bucket] = per_bucket.get(row.bucket, 0) + row.threads
    lines = [CategoryLine(c.name, tally.get((True, c.id), 0), tally.get((False, c.id), 0)) for c in categories]
    lines.sort(key=lambda line: (-line.threads, line.name.lower()))
    mine = [e for e in usage.exchanges if e.project_id == project.id]
    bins = [b for b in usage.bins if b.project_id == project.id]
    ratings = [f for f in usage.feedback if f.project_id == project.id]
    return ProjectReport(
        project=project,
        threads=sum(v for (current, _), v in tally.items() if current),
        previous_threads=sum(v for (current, _), v in tally.items() if not current),
        categories=lines,
        unlabelled=CategoryLine("Unlabelled", tally.get((True, None), 0), tally.get((False, None), 0)),
        top_unlabelled=[(q.question, q.threads) for q in questions if q.project_id == project.id],
        figures=exchange_figures(
            [e for e in mine if e.bucket >= first_current], [b for b in bins if b.span == CURRENT_SPAN]
        ),
        previous_figures=exchange_figures(
            [e for e in mine if e.bucket < first_current], [b for b in bins if b.span == PREVIOUS_SPAN]
        ),
        feedback=feedback_counts(f for f in ratings if f.bucket >= first_current),
        previous_feedback=feedback_counts(f for f in ratings if f.bucket < first_current),
        series=[per_bucket.get(i, 0) for i in range(first_current, len(bounds))],
        series_labels=[period.bucket_label(b) for b in bounds[first_current:]],
    )


# --- sending once ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InlineImage:
    """An image the HTML part shows through `cid:<content_id>`."""

    content_id: str
    png: bytes
    filename: str


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """A rendered report, ready for the mail service."""

    sender: str
    recipients: tuple[str, ...]
    subject: str
    text: str
    html: str
    images: tuple[InlineImage, ...] = ()


class Mailer(Protocol):
    """Sends one mail; returns the service's message id. Raises MailNotSent or MailOutcomeUnknown."""

    def send(self, mail: OutgoingMail) -> str: ...


@dataclass(frozen=True, slots=True)
class Claim:
    """The right to send one team's report for one period; `token` guards every later state change."""

    report_id: UUID
    token: UUID
    attempts: int


@dataclass(frozen=True, slots=True)
class StaleSend:
    """A report whose sender died after handing it to the mail service."""

    team_id: UUID
    period_start: date


@dataclass(frozen=True, slots=True)
class ReportRecord:
    """One row of the ledger, as operators see it."""

    team_id: UUID
    cadence: str
    period_start: date
    status: str
    attempts: int
    claimed_at: datetime
    sent_at: datetime | None
    ses_message_id: str | None
    recipients: list[str]
    error: str | None


class ReportLedger(Protocol):
    """The reports table: claims and their outcomes, each a conditional UPDATE on the claim token."""

    def mark_stale_sends_uncertain(self, lease: timedelta) -> list[StaleSend]: ...

    def claim(
        self, settings: ReportSettings, period: Period, lease: timedelta, max_attempts: int, force: bool
    ) -> Claim | None: ...

    def mark_sending(self, claim: Claim) -> None: ...

    def mark_sent(self, claim: Claim, message_id: str) -> None: ...

    def mark_failed(self, claim: Claim, error: str, uncertain: bool) -> None: ...


@dataclass(frozen=True, slots=True)
class ReportServices:
    """Everything a report run needs."""

    settings: ReportSettingsRepository
    source: ReportDataSource
    ledger: ReportLedger
    mailer: Mailer
    sender: str


@dataclass(slots=True)
class RunSummary:
    """What one run did, team by team."""

    sent: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    uncertain: list[dict[str, str]] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """How many teams ended in each outcome."""
        return {k: len(v) for k, v in self._parts().items()}

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary (counts first, then the teams)."""
        return {"counts": self.counts, **self._parts()}

    def _parts(self) -> dict[str, list[dict[str, str]]]:
        return {"sent": self.sent, "skipped": self.skipped, "failed": self.failed, "uncertain": self.uncertain}


def run_reports(
    services: ReportServices,
    now: datetime,
    render: RenderFn,
    team_id: UUID | None = None,
    resend: bool = False,
) -> RunSummary:
    """Send every due report (or one team's); one team's failure never stops the others."""
    summary = RunSummary()
    for stale in services.ledger.mark_stale_sends_uncertain(CLAIM_LEASE):
        summary.uncertain.append({"team_id": str(stale.team_id), "period_start": stale.period_start.isoformat()})
    for settings in services.settings.enabled_report_settings(team_id):
        entry = {"team_id": str(settings.team_id)}
        try:
            period = last_complete_period(settings.cadence, settings.timezone, now)
            entry["period_start"] = period.start_date.isoformat()
            message_id = _send_once(services, settings, period, render, resend)
        # Any failure (bad data of one team included) is recorded for that team only.
        except Exception as exc:
            target = summary.uncertain if isinstance(exc, MailOutcomeUnknown) else summary.failed
            target.append({**entry, "error": f"{type(exc).__name__}: {exc}"})
            continue
        if message_id is None:
            summary.skipped.append({**entry, "reason": "already claimed or sent for this period"})
        else:
            summary.sent.append({**entry, "message_id": message_id})
    return summary


class RenderFn(Protocol):
    """Turns a team report into a mail."""

    def __call__(self, report: TeamReport, sender: str, recipients: tuple[str, ...]) -> OutgoingMail: ...


def _send_once(
    services: ReportServices, settings: ReportSettings, period: Period, render: RenderFn, resend: bool
) -> str | None:
    ledger = services.ledger
    claim = ledger.claim(settings, period, CLAIM_LEASE, MAX_ATTEMPTS, resend)
    if claim is None:
        return None
    try:
        mail = render(
            build_team_report(services.source, settings.team_id, period), services.sender, settings.recipients
        )
    except Exception as exc:
        ledger.mark_failed(claim, f"building failed: {exc}", uncertain=False)
        raise
    ledger.mark_sending(claim)
    try:
        message_id = services.mailer.send(mail)
    except MailNotSent as exc:
        ledger.mark_failed(claim, exc.message, uncertain=False)
        raise
    except Exception as exc:
        # Anything but a clear refusal may have happened after SES accepted the mail: never resend it blindly.
        ledger.mark_failed(claim, f"{type(exc).__name__}: {exc}", uncertain=True)
        if isinstance(exc, MailOutcomeUnknown):
            raise
        raise MailOutcomeUnknown(f"{type(exc).__name__}: {exc}") from exc
    ledger.mark_sent(claim, message_id)
    return message_id
