"""Backfills of a project: start one (or resume the stopped one), list them, and follow one's progress."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from fastapi import status
from pydantic import BaseModel, ConfigDict, Field

from threadline.api.deps import ContainerDep, ProjectIdDep
from threadline.api.errors import CONFLICT
from threadline.api.models import RequestModel
from threadline.api.pagination import PageDep, PagePublic
from threadline.api.routing import contract_router
from threadline.domain import backfill

router = contract_router(prefix="/query/v1", tags=["backfills"])


class BackfillCreate(RequestModel):
    """Which threads to label: the unlabelled ones, or the auto-labelled ones again (after categories changed)."""

    scope: Literal["unlabelled", "relabel_auto"] = "unlabelled"


class RangeFailurePublic(BaseModel):
    """A range that failed (while running: one whose last attempt failed)."""

    model_config = ConfigDict(from_attributes=True)

    ordinal: int
    attempts: int
    error: str


class BackfillPublic(BaseModel):
    """A backfill's state and progress."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    project_id: UUID | None
    scope: Literal["unlabelled", "relabel_auto"]
    state: Literal["running", "succeeded", "incomplete", "failed", "stopped"] = Field(
        description="`succeeded` only when no thread of its scope is left unlabelled at the end; `incomplete` when "
        "every range ran but `threads_unlabelled` remain (start a new backfill for them)"
    )
    attempt: int = Field(description="1, plus one per resumption")
    resumed: bool = Field(description="true once a stopped or failed backfill has been resumed (attempt > 1)")
    ranges_done: int
    ranges_total: int
    threads_planned: int
    threads_labelled: int
    threads_unlabelled: int | None = Field(
        description="threads of its scope still unlabelled when it ended, counted then; null while running"
    )
    failures: list[RangeFailurePublic]
    error: str | None
    started_at: datetime
    finished_at: datetime | None


@router.post("/projects/{project_id}/backfills/", status_code=status.HTTP_202_ACCEPTED, responses=CONFLICT)
def start_backfill(container: ContainerDep, project_id: ProjectIdDep, body: BackfillCreate) -> BackfillPublic:
    """Start a backfill (or resume this scope's stopped or failed one); 409 names the running one."""
    started = backfill.start(container.backfills, container.backfill_runner, project_id, backfill.Scope(body.scope))
    return BackfillPublic.model_validate(started.backfill)


@router.get("/projects/{project_id}/backfills/")
def list_backfills(container: ContainerDep, project_id: ProjectIdDep, page: PageDep) -> PagePublic[BackfillPublic]:
    """The project's backfills, newest first, as last recorded (GET one to reconcile it with its execution)."""
    return PagePublic[BackfillPublic].of(backfill.list_backfills(container.backfills, project_id, page))


@router.get("/projects/{project_id}/backfills/{backfill_id}/")
def get_backfill(container: ContainerDep, project_id: ProjectIdDep, backfill_id: UUID) -> BackfillPublic:
    """A backfill's state, reconciled with its execution (a stopped execution shows as stopped)."""
    runner = container.backfill_runner if container.settings.backfill_state_machine_arn else None
    return BackfillPublic.model_validate(backfill.status(container.backfills, runner, project_id, backfill_id))
