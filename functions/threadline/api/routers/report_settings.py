"""A team's report settings, read and replaced with the key of any project of the team."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from threadline.api.deps import ContainerDep, PrincipalDep
from threadline.domain import reports
from threadline.domain.reports import ReportSettings

router = APIRouter(prefix="/query/v1", tags=["reports"])


class ReportSettingsUpdate(BaseModel):
    """The full settings; every field is validated (addresses, IANA timezone) before anything is stored."""

    recipients: list[str] = Field(default_factory=list, max_length=50, examples=[["ops@example.com"]])
    cadence: str = Field(default="weekly", examples=["weekly"], description="daily, weekly or monthly")
    timezone: str = Field(default="UTC", examples=["Europe/Paris"], description="IANA name")
    enabled: bool = True


class ReportSettingsPublic(BaseModel):
    """The team's settings (the defaults, disabled, until first set)."""

    team_id: str
    recipients: list[str]
    cadence: str
    timezone: str
    enabled: bool
    updated_at: datetime | None

    @classmethod
    def of(cls, s: ReportSettings) -> ReportSettingsPublic:
        """From the domain settings."""
        return cls(
            team_id=str(s.team_id),
            recipients=list(s.recipients),
            cadence=s.cadence,
            timezone=s.timezone,
            enabled=s.enabled,
            updated_at=s.updated_at,
        )


@router.get("/team/report-settings/")
async def get_report_settings(container: ContainerDep, principal: PrincipalDep) -> ReportSettingsPublic:
    """The calling key's team's report settings."""
    found = await run_in_threadpool(reports.current_settings, container.reports, principal.team_id)
    return ReportSettingsPublic.of(found)


@router.put("/team/report-settings/")
async def put_report_settings(
    container: ContainerDep, principal: PrincipalDep, body: ReportSettingsUpdate
) -> ReportSettingsPublic:
    """Replace the team's report settings; an invalid address or timezone is a 422 naming it."""
    saved = await run_in_threadpool(
        reports.save_settings,
        container.reports,
        principal.team_id,
        body.recipients,
        body.cadence,
        body.timezone,
        body.enabled,
    )
    return ReportSettingsPublic.of(saved)
