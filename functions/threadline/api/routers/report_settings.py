"""A team's report settings, read and replaced with the key of any project of the team."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from threadline.api.deps import ContainerDep, PrincipalDep
from threadline.api.models import RequestModel
from threadline.api.routing import contract_router
from threadline.domain import reports
from threadline.domain.report_preview import send_preview
from threadline.domain.report_render import render_mail

router = contract_router(prefix="/query/v1", tags=["reports"])


class ReportSettingsUpdate(RequestModel):
    """The full settings; every field is validated (addresses, IANA timezone) before anything is stored."""

    recipients: list[str] = Field(default_factory=list, max_length=50, examples=[["ops@example.com"]])
    cadence: str = Field(default="weekly", examples=["weekly"], description="daily, weekly or monthly")
    timezone: str = Field(default="UTC", examples=["Europe/Paris"], description="IANA name")
    enabled: bool = True


class ReportSettingsPublic(BaseModel):
    """The team's settings (the defaults, disabled, until first set)."""

    model_config = ConfigDict(from_attributes=True)

    team_id: UUID
    recipients: list[str]
    cadence: str
    timezone: str
    enabled: bool
    updated_at: datetime | None


@router.get("/team/report-settings/")
def get_report_settings(container: ContainerDep, principal: PrincipalDep) -> ReportSettingsPublic:
    """The calling key's team's report settings."""
    found = reports.current_settings(container.reports, principal.team_id)
    return ReportSettingsPublic.model_validate(found)


@router.put("/team/report-settings/")
def put_report_settings(
    container: ContainerDep, principal: PrincipalDep, body: ReportSettingsUpdate
) -> ReportSettingsPublic:
    """Replace the team's report settings; an invalid address or timezone is a 422 naming it."""
    saved = reports.save_settings(
        container.reports,
        principal.team_id,
        body.recipients,
        body.cadence,
        body.timezone,
        body.enabled,
    )
    return ReportSettingsPublic.model_validate(saved)


class ReportPreviewRequest(RequestModel):
    """Where to send the preview: one address, or null for the saved recipients."""

    to: str | None = Field(default=None, max_length=320, examples=["me@example.com"])


class ReportPreviewPublic(BaseModel):
    """The preview that was sent: to whom, the period it covers ([start, end)), the mail service's message id."""

    model_config = ConfigDict(from_attributes=True)

    sent_to: list[str]
    period_start: datetime
    period_end: datetime
    message_id: str


@router.post("/team/report-settings/preview/")
def preview_report(container: ContainerDep, principal: PrincipalDep, body: ReportPreviewRequest) -> ReportPreviewPublic:
    """Send the team's report for its last complete period now, marked "[Preview]", outside the schedule's ledger."""
    sent = send_preview(container.report_services, principal.team_id, datetime.now(UTC), render_mail, body.to)
    return ReportPreviewPublic.model_validate(sent)
