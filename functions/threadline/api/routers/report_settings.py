"""A team's report settings, read and replaced with the key of any project of the team."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from threadline.api.deps import ContainerDep, PrincipalDep
from threadline.api.errors import API_ERRORS
from threadline.domain import reports

router = APIRouter(prefix="/query/v1", tags=["reports"], responses=API_ERRORS)


class ReportSettingsUpdate(BaseModel):
    """The full settings; every field is validated (addresses, IANA timezone) before anything is stored."""

    model_config = ConfigDict(extra="forbid")

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
