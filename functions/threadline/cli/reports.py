"""`threadline report` (send due reports now, or list the ledger), `threadline admin report-settings` and
`threadline admin recount-analytics` (added to the admin verbs by `cli/admin.py`)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from threadline.bootstrap import Container
from threadline.domain import reports
from threadline.domain.report_render import render_mail


def configure(sub: Any) -> None:
    """Add `threadline report`."""
    report = sub.add_parser("report", help="send due team reports now, or list what was sent")
    report.add_argument("--now", action="store_true", help="send every due report now (as the schedule would)")
    report.add_argument("--team", type=UUID, help="only this team")
    report.add_argument(
        "--resend", action="store_true", help="send again even if this period's report was sent (or is uncertain)"
    )
    report.set_defaults(func=_report)


def configure_admin(verbs: Any) -> None:
    """Add `threadline admin report-settings` and `threadline admin recount-analytics` to the admin verbs."""
    _settings_parser(verbs)
    _recount_parser(verbs)


def _report(args: argparse.Namespace, container: Container) -> object:
    if not args.now:
        return container.reports.recent_reports(args.team)
    _verify_local_sender(container)
    summary = reports.run_reports(
        container.report_services, datetime.now(UTC), render_mail, team_id=args.team, resend=args.resend
    )
    return summary.as_dict()


def _verify_local_sender(container: Container) -> None:
    # moto refuses mail from an unverified sender, as SES does; on real AWS the sender (or its domain)
    # is verified once by the operator, so this only runs against a local endpoint. The local client
    # also supplies moto's fake credentials when none are set.
    endpoint = container.settings.aws_endpoint_url
    if endpoint and ("127.0.0.1" in endpoint or "localhost" in endpoint):
        from threadline.local.deploy import aws_client

        ses = aws_client("ses", endpoint, container.settings.aws_region)
        ses.verify_email_identity(EmailAddress=container.settings.report_sender)


def _settings_parser(verbs: Any) -> None:
    parser = verbs.add_parser("report-settings", help="show or change a team's report settings")
    parser.add_argument("team_id", type=UUID)
    parser.add_argument("--recipients", help="comma-separated addresses (replaces the list)")
    parser.add_argument("--cadence", choices=reports.CADENCES)
    parser.add_argument("--timezone", help="IANA name, e.g. Europe/Paris")
    enabled = parser.add_mutually_exclusive_group()
    enabled.add_argument("--enable", dest="enabled", action="store_true", default=None)
    enabled.add_argument("--disable", dest="enabled", action="store_false")
    parser.set_defaults(func=_settings)


def _settings(args: argparse.Namespace, container: Container) -> object:
    container.tenancy.get_team(args.team_id)
    current = reports.current_settings(container.reports, args.team_id)
    changes = (args.recipients, args.cadence, args.timezone, args.enabled)
    if all(value is None for value in changes):
        return current
    recipients = (
        [r for r in args.recipients.split(",") if r.strip()] if args.recipients is not None else current.recipients
    )
    # Setting recipients on a team that never had reports turns them on, unless told otherwise.
    enabled = args.enabled if args.enabled is not None else (current.enabled or args.recipients is not None)
    return reports.save_settings(
        container.reports,
        args.team_id,
        recipients,
        args.cadence or current.cadence,
        args.timezone or current.timezone,
        enabled,
    )


def _recount_parser(verbs: Any) -> None:
    parser = verbs.add_parser(
        "recount-analytics",
        help="rebuild the analytics rollups from the rows (after writing rows with triggers off); blocks writes",
    )
    parser.add_argument("--project", type=UUID, action="append", help="only this project (repeatable)")
    parser.set_defaults(func=_recount)


def _recount(args: argparse.Namespace, container: Container) -> object:
    started = datetime.now(UTC)
    projects = container.analytics.recount(args.project)
    return {"projects": projects, "seconds": round((datetime.now(UTC) - started).total_seconds(), 3)}
