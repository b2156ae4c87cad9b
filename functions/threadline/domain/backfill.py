"""Backfills: label many past threads in keyset ranges, through the same classifier as the SQS worker.

A backfill is a job (one row) run by the Step Functions state machine: Plan splits the threads in
scope into keyset ranges of thread ids, a distributed Map classifies each range, Summarize records
the result. A job that is stopped or fails is resumed by starting it again: ranges recorded done are
skipped, and inside a range only threads still matching the scope are touched, so nothing already
labelled by the job is labelled twice. User labels are never touched (guarded in the SQL itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

from threadline.domain.errors import Conflict
from threadline.domain.pagination import Cursor, Page, PageRequest, page_of
from threadline.domain.ports import LabelDecision, ThreadClassifier

RANGE_SIZE = 1000
CLASSIFY_BATCH = 256


class Scope(StrEnum):
    """Which threads a backfill labels."""

    UNLABELLED = "unlabelled"
    RELABEL_AUTO = "relabel_auto"


class State(StrEnum):
    """Where a backfill stands."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"  # every range ran and no thread of the scope is left unlabelled
    INCOMPLETE = "incomplete"  # every range ran, yet threads of the scope are unlabelled (threads_unlabelled)
    FAILED = "failed"
    STOPPED = "stopped"


class ExecutionStatus(StrEnum):
    """What the workflow engine says about one execution (Step Functions' own names)."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    ABORTED = "ABORTED"
    PENDING_REDRIVE = "PENDING_REDRIVE"
    MISSING = "MISSING"


class TransientError(Exception):
    """A failure worth retrying (the database was briefly unavailable); the state machine retries it by name."""


@dataclass(frozen=True, slots=True)
class RangeFailure:
    """A range that did not finish, with the last error it reported."""

    ordinal: int
    project_id: UUID
    attempts: int
    error: str


@dataclass(frozen=True, slots=True)
class Backfill:
    """A backfill job and its progress."""

    id: UUID
    project_id: UUID | None
    scope: Scope
    state: State
    attempt: int
    execution_arn: str | None
    ranges_total: int
    ranges_done: int
    threads_planned: int
    threads_labelled: int
    # Threads of the scope still unlabelled when it ended, counted then (None while running).
    threads_unlabelled: int | None
    failures: list[RangeFailure]
    error: str | None
    cutoff: datetime
    started_at: datetime
    finished_at: datetime | None

    @property
    def resumed(self) -> bool:
        """Whether a stopped or failed attempt was resumed: every read says so, not only the start's response."""
        return self.attempt > 1

    @property
    def execution_name(self) -> str:
        """The execution's name: the backfill id, then one suffix per resumption (names are unique)."""
        return str(self.id) if self.attempt == 1 else f"{self.id}-{self.attempt}"


@dataclass(frozen=True, slots=True)
class KeyRange:
    """[first_id, next_id) of one project's thread ids (next_id None: to the end)."""

    backfill_id: UUID
    ordinal: int
    project_id: UUID
    first_id: UUID
    next_id: UUID | None
    planned: int


@dataclass(frozen=True, slots=True)
class RangeWork:
    """What ClassifyRange needs: the range, the job's scope and cutoff, and the threads still in scope."""

    range: KeyRange
    scope: Scope
    cutoff: datetime
    done: bool
    questions: list[tuple[UUID, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Manifest:
    """Where the Map's items were written."""

    bucket: str
    key: str
    items: int


@dataclass(frozen=True, slots=True)
class Started:
    """A backfill that was just started or resumed."""

    backfill: Backfill
    resumed: bool


class BackfillRepository(Protocol):
    """Storage of backfills and their ranges; every state change is conditional, so retries change nothing twice."""

    def begin(self, project_id: UUID | None, scope: Scope) -> Started:
        """Create a running backfill, or resume the project's latest unfinished one of the same scope.

        Raises Conflict (details: running_id) when one is already running for the project.
        """
        ...

    def get(self, backfill_id: UUID, project_id: UUID | None) -> Backfill:
        """One backfill (project_id None: any); NotFound otherwise."""
        ...

    def list_backfills(self, project_id: UUID, page: PageRequest) -> list[Backfill]:
        """Up to `page.fetch` of the project's backfills, newest first (started_at, id)."""
        ...

    def set_execution(self, backfill_id: UUID, attempt: int, execution_arn: str) -> None: ...

    def plan(self, backfill_id: UUID, attempt: int, range_size: int) -> list[KeyRange]:
        """Split the threads in scope into ranges once per job; return the ranges not yet done."""
        ...

    def range_work(self, backfill_id: UUID, ordinal: int) -> RangeWork: ...

    def apply_labels(self, work: RangeWork, decisions: Sequence[LabelDecision]) -> int:
        """Write auto labels to threads still in scope (never a user label); count them on the range."""
        ...

    def finish_range(self, backfill_id: UUID, ordinal: int) -> None: ...

    def record_range_error(self, backfill_id: UUID, ordinal: int, error: str) -> None: ...

    def finish(self, backfill_id: UUID, attempt: int, error: str | None) -> Backfill:
        """Close a running attempt: succeeded when every range is done and no error, failed otherwise."""
        ...

    def end(self, backfill_id: UUID, attempt: int, state: State, error: str | None) -> None:
        """Close a running attempt with a given state (stopped or failed) if it is still running."""
        ...


class WorkflowRunner(Protocol):
    """Starts and inspects executions of the backfill state machine."""

    def start(self, name: str, payload: dict[str, Any]) -> str: ...

    def status(self, execution_arn: str) -> ExecutionStatus: ...


class ManifestStore(Protocol):
    """Keeps the Map's item list where its ItemReader reads it."""

    def write(self, key: str, items: list[dict[str, Any]]) -> Manifest: ...


def start(repo: BackfillRepository, runner: WorkflowRunner, project_id: UUID | None, scope: Scope) -> Started:
    """Start (or resume) a backfill and its execution; Conflict with the running one's id if there is one."""
    started = repo.begin(project_id, scope)
    job = started.backfill
    payload = {"backfill_id": str(job.id), "attempt": job.attempt}
    try:
        arn = runner.start(job.execution_name, payload)
    except Exception as exc:
        # Without an execution nothing would ever close the job, and it would block the project.
        repo.end(job.id, job.attempt, State.FAILED, f"could not start the execution: {type(exc).__name__}")
        raise
    repo.set_execution(job.id, job.attempt, arn)
    return Started(backfill=repo.get(job.id, project_id), resumed=started.resumed)


def list_backfills(repo: BackfillRepository, project_id: UUID, page: PageRequest) -> Page[Backfill]:
    """A page of the project's backfills, newest first (as stored: not reconciled with their executions)."""
    return page_of(repo.list_backfills(project_id, page), page, lambda b: Cursor.after(b.started_at, b.id))


def plan(
    repo: BackfillRepository, manifests: ManifestStore, backfill_id: UUID, attempt: int, range_size: int = RANGE_SIZE
) -> Manifest:
    """Plan step: the ranges still to do, written as the Map's JSON item list."""
    pending = repo.plan(backfill_id, attempt, range_size)
    items = [{"backfill_id": str(r.backfill_id), "ordinal": r.ordinal} for r in pending]
    return manifests.write(f"backfills/{backfill_id}/attempt-{attempt}.json", items)


def classify_range(repo: BackfillRepository, classifier: ThreadClassifier, backfill_id: UUID, ordinal: int) -> int:
    """ClassifyRange step: label the range's threads still in scope, in batches; returns how many were labelled.

    A failure is recorded on the range and raised again, so the state machine retries or reports it.
    """
    try:
        work = repo.range_work(backfill_id, ordinal)
        labelled = 0
        for start_at in range(0, len(work.questions), CLASSIFY_BATCH):
            batch = work.questions[start_at : start_at + CLASSIFY_BATCH]
            labelled += repo.apply_labels(work, classifier.classify(work.range.project_id, batch))
        repo.finish_range(backfill_id, ordinal)
    except Exception as exc:
        repo.record_range_error(backfill_id, ordinal, f"{type(exc).__name__}: {exc}"[:500])
        raise
    return labelled


def summarize(repo: BackfillRepository, backfill_id: UUID, attempt: int, error: str | None) -> Backfill:
    """Summarize step: record the job's outcome (failed ranges are the ones not done)."""
    return repo.finish(backfill_id, attempt, error)


_ENDED: dict[ExecutionStatus, State] = {
    ExecutionStatus.ABORTED: State.STOPPED,
    ExecutionStatus.MISSING: State.STOPPED,
    ExecutionStatus.FAILED: State.FAILED,
    ExecutionStatus.TIMED_OUT: State.FAILED,
}


def status(
    repo: BackfillRepository, runner: WorkflowRunner | None, project_id: UUID | None, backfill_id: UUID
) -> Backfill:
    """A backfill's progress, reconciled with its execution when a runner is given (a stopped one never summarizes)."""
    job = repo.get(backfill_id, project_id)
    if runner is None or job.state is not State.RUNNING or job.execution_arn is None:
        return job
    execution = runner.status(job.execution_arn)
    if execution is ExecutionStatus.SUCCEEDED:
        repo.finish(job.id, job.attempt, None)
    elif execution in _ENDED:
        repo.end(job.id, job.attempt, _ENDED[execution], f"execution {execution.value.lower()}")
    else:
        return job
    return repo.get(backfill_id, project_id)


def conflict(running_id: UUID) -> Conflict:
    """The error a second start gets: it names the running backfill."""
    return Conflict("a backfill is already running for this project", running_id=str(running_id))
