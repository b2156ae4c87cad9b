"""The sweeper: nothing stays silently unlabelled, and a dead-letter queue that fills is never silent.

A classify message can be lost: a crash between a commit and its send, a local stack killed with messages
in its in-memory queues, a message that exhausted its receives and sits in a dead-letter queue nobody
redrives. A scheduled sweep (EventBridge Scheduler, every 15 minutes) asks again for every thread that has
a question, no label and is older than a grace period, in a project that has categories; a thread it
asked for is asked for again only after `retry_after`, so a thread the classifier keeps skipping costs one
message per retry period, not one per sweep. It then reads the depth of every dead-letter queue and tells
the operators when one holds messages: once when it starts to fill, again when it grows, and daily while
it stays full.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from threadline.domain.categories import ClassificationRequests

# Long enough that a healthy classifier (seconds behind the chat) has labelled the thread before the sweep.
DEFAULT_GRACE = timedelta(minutes=10)
DEFAULT_RETRY_AFTER = timedelta(hours=1)
DEFAULT_BATCH = 5_000
RENOTIFY_AFTER = timedelta(days=1)


class SweeperRepository(Protocol):
    """What the sweep reads and remembers: the threads it asks for, the dead-letter depths it told operators of."""

    def claim_unlabelled(
        self, created_before: datetime, requested_before: datetime, limit: int
    ) -> list[tuple[UUID, UUID]]:
        """Up to `limit` (project_id, thread_id) that need a label and were not asked for since
        `requested_before`; marks them asked for now."""
        ...

    def dead_letter_notices(self) -> dict[str, tuple[int, datetime]]:
        """Per queue: the depth last notified and when."""
        ...

    def record_dead_letter_notice(self, queue: str, depth: int, at: datetime) -> None:
        """Remember a notice (depth 0 clears the queue's state)."""
        ...


class DeadLetterQueues(Protocol):
    """The dead-letter queues of the deployment."""

    def depths(self) -> dict[str, int]:
        """Messages waiting in each dead-letter queue, by queue name."""
        ...


class OperatorAlerts(Protocol):
    """Where operators hear about trouble (SNS in AWS; the logs everywhere)."""

    def notify(self, subject: str, message: str) -> None: ...


@dataclass(frozen=True, slots=True)
class SweepPolicy:
    """How old an unlabelled thread must be before it is asked for again, and how often."""

    grace: timedelta = DEFAULT_GRACE
    retry_after: timedelta = DEFAULT_RETRY_AFTER
    batch: int = DEFAULT_BATCH


@dataclass(frozen=True, slots=True)
class SweepServices:
    """Everything a sweep uses, built once per process."""

    threads: SweeperRepository
    requests: ClassificationRequests
    queues: DeadLetterQueues
    alerts: OperatorAlerts
    policy: SweepPolicy


@dataclass
class SweepReport:
    """What one sweep did."""

    requeued: int = 0
    asked: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    notified: bool = False

    def as_dict(self) -> dict[str, object]:
        """The handler's JSON result."""
        return {
            "requeued": self.requeued,
            "asked": self.asked,
            "dead_letters": self.dead_letters,
            "notified": self.notified,
        }


def requeue_unlabelled(
    threads: SweeperRepository, requests: ClassificationRequests, policy: SweepPolicy, now: datetime
) -> tuple[int, int]:
    """Ask again for every thread left unlabelled past the grace period; returns (asked for, queued)."""
    claimed = threads.claim_unlabelled(now - policy.grace, now - policy.retry_after, policy.batch)
    by_project: dict[UUID, list[UUID]] = {}
    for project_id, thread_id in claimed:
        by_project.setdefault(project_id, []).append(thread_id)
    queued = sum(requests.request_classification(p, ids) for p, ids in by_project.items())
    return len(claimed), queued


def dead_letter_notice(
    depths: Mapping[str, int], last: Mapping[str, tuple[int, datetime]], now: datetime
) -> list[tuple[str, int]]:
    """The non-empty queues worth a notice: newly filled, grown since the last notice, or a day since it."""
    due: list[tuple[str, int]] = []
    for queue, depth in sorted(depths.items()):
        if depth <= 0:
            continue
        previous = last.get(queue)
        if previous is None or depth > previous[0] or now - previous[1] >= RENOTIFY_AFTER:
            due.append((queue, depth))
    return due


def _message(due: Sequence[tuple[str, int]], depths: Mapping[str, int]) -> str:
    lines = [f"{queue}: {depth} message(s)" for queue, depth in due]
    others = [f"{q}: {d}" for q, d in sorted(depths.items()) if d > 0 and q not in dict(due)]
    return "\n".join(
        [
            "Messages are waiting in Threadline's dead-letter queues. Each one is work that failed",
            "every retry: read it, fix the cause, then redrive the queue (SQS StartMessageMoveTask).",
            "",
            *lines,
            *(["", "Still waiting, already reported: " + ", ".join(others)] if others else []),
        ]
    )


def sweep(services: SweepServices, now: datetime) -> SweepReport:
    """One sweep: requeue what is left unlabelled, then report dead-letter queues that hold messages."""
    threads, alerts = services.threads, services.alerts
    report = SweepReport()
    report.asked, report.requeued = requeue_unlabelled(threads, services.requests, services.policy, now)
    depths = services.queues.depths()
    report.dead_letters = {q: d for q, d in depths.items() if d > 0}
    last = threads.dead_letter_notices()
    due = dead_letter_notice(depths, last, now)
    if due:
        total = sum(d for _, d in due)
        alerts.notify(f"Threadline: {total} message(s) in dead-letter queues", _message(due, depths))
        report.notified = True
    for queue, depth in due:
        threads.record_dead_letter_notice(queue, depth, now)
    for queue, depth in depths.items():
        if depth == 0 and queue in last:
            threads.record_dead_letter_notice(queue, 0, now)
    return report
