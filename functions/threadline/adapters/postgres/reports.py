"""Report settings, the report ledger (claims), and the aggregates of a team report, in Postgres."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

from threadline.adapters.postgres.db import Database, Row, class_row
from threadline.adapters.postgres.usage import read_usage
from threadline.domain.analytics import CategoryRef
from threadline.domain.errors import Conflict, NotFound
from threadline.domain.reports import (
    Claim,
    Period,
    ProjectRef,
    QuestionCount,
    ReportRecord,
    ReportSettings,
    StaleSend,
    TeamReportRows,
)
from threadline.domain.usage import UsageQuery

_SETTINGS_COLUMNS = "team_id, recipients, cadence, timezone, enabled, updated_at"

_PUT_SETTINGS = (
    """
INSERT INTO report_settings (team_id, recipients, cadence, timezone, enabled)
VALUES (%(team_id)s, %(recipients)s, %(cadence)s, %(timezone)s, %(enabled)s)
ON CONFLICT (team_id) DO UPDATE SET
    recipients = EXCLUDED.recipients, cadence = EXCLUDED.cadence, timezone = EXCLUDED.timezone,
    enabled = EXCLUDED.enabled, updated_at = now()
RETURNING """
    + _SETTINGS_COLUMNS
)

_GET_SETTINGS = "SELECT " + _SETTINGS_COLUMNS + " FROM report_settings WHERE team_id = %(team_id)s"

_ENABLED_SETTINGS = (
    "SELECT " + _SETTINGS_COLUMNS + " FROM report_settings"
    " WHERE enabled AND (%(team_id)s::uuid IS NULL OR team_id = %(team_id)s) ORDER BY team_id"
)

_STALE_SENDS = (
    "UPDATE reports SET status = 'uncertain',"
    " error = 'the sender stopped after handing the mail to SES; not resent automatically'"
    " WHERE status = 'sending' AND sending_at < now() - %(lease)s RETURNING team_id, period_start"
)

_RECENT = (
    "SELECT team_id, cadence, period_start, status, attempts, claimed_at, sent_at, ses_message_id,"
    " recipients, error FROM reports WHERE %(team_id)s::uuid IS NULL OR team_id = %(team_id)s"
    " ORDER BY claimed_at DESC LIMIT %(limit)s"
)

# The claim: a new row, or a takeover of one that is safe to redo (failed below the attempt cap, or a
# build that died before anything reached SES). 'sending', 'sent' and 'uncertain' rows are never taken
# over automatically; `force` (an operator's resend) takes over anything but a live claim.
_CLAIM = """
INSERT INTO reports (team_id, cadence, period_start, starts_at, ends_at, timezone, status, claim_token, recipients)
VALUES (%(team_id)s, %(cadence)s, %(period_start)s, %(starts_at)s, %(ends_at)s, %(timezone)s, 'claimed',
        %(token)s, %(recipients)s)
ON CONFLICT (team_id, cadence, period_start) DO UPDATE SET
    status = 'claimed', attempts = reports.attempts + 1, claim_token = EXCLUDED.claim_token, claimed_at = now(),
    sending_at = NULL, error = NULL, recipients = EXCLUDED.recipients, starts_at = EXCLUDED.starts_at,
    ends_at = EXCLUDED.ends_at, timezone = EXCLUDED.timezone
WHERE (reports.status = 'failed' AND reports.attempts < %(max_attempts)s)
   OR (reports.status = 'claimed' AND reports.claimed_at < now() - %(lease)s)
   OR (%(force)s AND reports.status IN ('failed', 'sent', 'uncertain'))
RETURNING id AS report_id, claim_token AS token, attempts
"""

# The same question asked with other casing or spacing counts as one; the most frequent come first.
_TOP_UNLABELLED = """
SELECT project_id, question, threads FROM (
    SELECT project_id, min(btrim(first_question)) AS question, count(*)::int AS threads,
           row_number() OVER (PARTITION BY project_id ORDER BY count(*) DESC, lower(btrim(first_question))) AS rank
    FROM threads
    WHERE project_id = ANY(%(ids)s) AND created_at >= %(starts_at)s AND created_at < %(ends_at)s
      AND category_id IS NULL AND btrim(coalesce(first_question, '')) <> ''
    GROUP BY project_id, lower(btrim(first_question))
) ranked
WHERE rank <= %(limit)s
ORDER BY project_id, rank
"""


def _settings(row: Row) -> ReportSettings:
    return ReportSettings(
        team_id=row["team_id"],
        recipients=tuple(row["recipients"]),
        cadence=row["cadence"],
        timezone=row["timezone"],
        enabled=row["enabled"],
        updated_at=row["updated_at"],
    )


class PostgresReports:
    """`ReportSettingsRepository`, `ReportLedger` and `ReportDataSource` over Postgres."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- settings

    def get_report_settings(self, team_id: UUID) -> ReportSettings | None:
        return self._db.one(_GET_SETTINGS, {"team_id": team_id}, row=_settings)

    def put_report_settings(self, settings: ReportSettings) -> ReportSettings:
        params = {
            "team_id": settings.team_id,
            "recipients": list(settings.recipients),
            "cadence": settings.cadence,
            "timezone": settings.timezone,
            "enabled": settings.enabled,
        }
        # RETURNING always gives the row: a team that does not exist already failed the foreign key.
        return self._db.one(_PUT_SETTINGS, params, missing=NotFound("team not found"), row=_settings)

    def enabled_report_settings(self, team_id: UUID | None = None) -> list[ReportSettings]:
        return self._db.all(_ENABLED_SETTINGS, {"team_id": team_id}, row=_settings)

    # --- ledger

    def mark_stale_sends_uncertain(self, lease: timedelta) -> list[StaleSend]:
        return self._db.all(_STALE_SENDS, {"lease": lease}, row=class_row(StaleSend))

    def claim(
        self, settings: ReportSettings, period: Period, lease: timedelta, max_attempts: int, force: bool
    ) -> Claim | None:
        params = {
            "team_id": settings.team_id,
            "cadence": period.cadence,
            "period_start": period.start_date,
            "starts_at": period.starts_at,
            "ends_at": period.ends_at,
            "timezone": period.timezone,
            "token": uuid4(),
            "recipients": list(settings.recipients),
            "lease": lease,
            "max_attempts": max_attempts,
            "force": force,
        }
        return self._db.one(_CLAIM, params, row=class_row(Claim))

    def _transition(self, claim: Claim, assignments: str, params: dict[str, object], guard: str = "") -> int:
        return self._db.run(
            "UPDATE reports SET " + assignments + " WHERE id = %(id)s AND claim_token = %(token)s" + guard,
            {"id": claim.report_id, "token": claim.token, **params},
        )

    def mark_sending(self, claim: Claim) -> None:
        # Only a live claim may hand the mail over: if another worker took it over, this one must not send.
        if not self._transition(claim, "status = 'sending', sending_at = now()", {}, " AND status = 'claimed'"):
            raise Conflict("the report claim was taken over by another worker", report_id=str(claim.report_id))

    def mark_sent(self, claim: Claim, message_id: str) -> None:
        # No status guard: SES accepted the mail, which is the truth even if a sweep called it uncertain.
        self._transition(
            claim,
            "status = 'sent', sent_at = now(), ses_message_id = %(message_id)s, error = NULL",
            {"message_id": message_id},
        )

    def mark_failed(self, claim: Claim, error: str, uncertain: bool) -> None:
        self._transition(
            claim,
            "status = %(status)s, error = %(error)s",
            {"status": "uncertain" if uncertain else "failed", "error": error[:2000]},
        )

    def recent_reports(self, team_id: UUID | None = None, limit: int = 50) -> list[ReportRecord]:
        """The latest ledger rows, newest first."""
        return self._db.all(_RECENT, {"team_id": team_id, "limit": limit}, row=class_row(ReportRecord))

    # --- the report's aggregates

    def read_team(self, team_id: UUID, period: Period, usage: UsageQuery, top_questions: int) -> TeamReportRows:
        with self._db.transaction() as conn:
            # One read-only snapshot: the figures of every project describe the same moment.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            team = conn.execute("SELECT name FROM teams WHERE id = %(id)s", {"id": team_id}).fetchone()
            if team is None:
                raise NotFound("team not found")
            projects = conn.execute(
                "SELECT id, name FROM projects WHERE team_id = %(id)s ORDER BY lower(name), id", {"id": team_id}
            ).fetchall()
            ids = [p["id"] for p in projects]
            params = {"ids": ids, "starts_at": period.starts_at, "ends_at": period.ends_at, "limit": top_questions}
            categories = conn.execute(
                "SELECT project_id, id, name FROM categories WHERE project_id = ANY(%(ids)s) ORDER BY lower(name), id",
                params,
            ).fetchall()
            usage_rows = read_usage(conn, ids, usage)
            questions = conn.execute(_TOP_UNLABELLED, params).fetchall()
        by_project: dict[UUID, list[CategoryRef]] = {}
        for c in categories:
            by_project.setdefault(c["project_id"], []).append(CategoryRef(id=c["id"], name=c["name"]))
        return TeamReportRows(
            team_name=team["name"],
            projects=[ProjectRef(id=p["id"], name=p["name"]) for p in projects],
            categories=by_project,
            usage=usage_rows,
            questions=[QuestionCount(**r) for r in questions],
        )
