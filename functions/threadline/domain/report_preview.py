"""A preview of a team's report, sent now to one address (the console's "send me a preview").

A preview is the report of the last complete period under the team's current settings, exactly as the schedule
would render it, with "[Preview]" before its subject. It goes around the report ledger: it is not the period's
report, so it never counts as sent, never blocks the scheduled one, and can be asked for again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from threadline.domain.errors import InvalidInput, Unavailable
from threadline.domain.reports import (
    MailNotSent,
    MailOutcomeUnknown,
    RenderFn,
    ReportServices,
    build_team_report,
    current_settings,
    last_complete_period,
    validate_recipients,
)


@dataclass(frozen=True, slots=True)
class PreviewSent:
    """Where the preview went, the period it covers ([start, end), local midnights in UTC), the mail's id."""

    sent_to: tuple[str, ...]
    period_start: datetime
    period_end: datetime
    message_id: str


def send_preview(
    services: ReportServices, team_id: UUID, now: datetime, render: RenderFn, to: str | None
) -> PreviewSent:
    """Render the team's report for its last complete period and send it to `to` (else the saved recipients)."""
    settings = current_settings(services.settings, team_id)
    recipients = validate_recipients([to]) if to else settings.recipients
    if not recipients:
        raise InvalidInput("give an address to send the preview to, or save the report's recipients first", field="to")
    period = last_complete_period(settings.cadence, settings.timezone, now)
    mail = render(build_team_report(services.source, team_id, period), services.sender, recipients)
    try:
        message_id = services.mailer.send(replace(mail, subject=f"[Preview] {mail.subject}"))
    except (MailNotSent, MailOutcomeUnknown) as exc:
        raise Unavailable(f"the mail service did not take the preview: {exc.message}") from exc
    return PreviewSent(recipients, period.starts_at, period.ends_at, message_id)
