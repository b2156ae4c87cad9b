"""Backfills of a project: start one (or resume the stopped one), and follow its progress."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from fastapi import APIRouter, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from threadline.api.deps import ContainerDep, ProjectIdDep
from threadline.bootstrap import Container
from threadline.domain import backfill

router = APIRouter(prefix="/query/v1", tags=["backfills"])


class BackfillCreate(BaseModel):
    """Which threads to label: the unlabelled ones, or the auto-labelled ones again (after categories changed)."""

    scope: Literal["unlabelled", "relabel_auto"] = "unlabelled"


class RangeFailurePublic(BaseModel):
    """A range that failed (while running: one whose last attempt failed)."""

    ordinal: int
    attempts: int
    error: str


class BackfillPublic(BaseModel):
    """A backfill's state and progress."""

    id: UUID
    project_id: UUID | None
    scope: str
    state: Literal["running", "succeeded", "failed", "stopped"]
    attempt: int = Field(description="1, plus one per resumption")
    resumed: bool = False
    ranges_done: int
    ranges_total: int
    threads_planned: int
    threads_labelled: int
    failures: list[RangeFailurePublic]
    error: str | None
    started_at: datetime
    finished_at: datetime | None


def _public(job: backfill.Backfill, resumed: bool = False) -> BackfillPublic:
    return BackfillPublic(
        id=job.id,
        project_id=job.project_id,
        scope=job.scope.value,
        state=job.state.value,
        attempt=job.attempt,
        resumed=resumed,
        ranges_done=job.ranges_done,
        ranges_total=job.ranges_total,
        threads_planned=job.threads_planned,
        threads_labelled=job.threads_labelled,
        failures=[RangeFailurePublic(ordinal=f.ordinal, attempts=f.attempts, error=f.error) for f in job.failures],
        error=job.error,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def _start(container: Container, project_id: UUID, scope: str) -> backfill.Started:
    return backfill.start(container.backfills, container.backfill_runner, project_id, backfill.Scope(scope))


@router.post("/projects/{project_id}/backfills/", status_code=status.HTTP_202_ACCEPTED)
async def start_backfill(container: ContainerDep, project_id: ProjectIdDep, body: BackfillCreate) -> BackfillPublic:
    """Start a backfill (or resume this scope's stopped or failed one); 409 names the running one."""
    started = await run_in_threadpool(_start, container, project_id, body.scope)
    return _public(started.backfill, started.resumed)


@router.get("/projects/{project_id}/backfills/{backfill_id}/")
async def get_backfill(container: ContainerDep, project_id: ProjectIdDep, backfill_id: UUID) -> BackfillPublic:
    """A backfill's state, reconciled with its execution (a stopped execution shows as stopped)."""
    runner = container.backfill_runner if container.settings.backfill_state_machine_arn else None
    job = await run_in_threadpool(backfill.status, container.backfills, runner, project_id, backfill_id)
    return _public(job)
