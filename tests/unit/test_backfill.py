"""Backfill domain rules and the seeder's question generator (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from threadline.domain.backfill import Backfill, Scope, State
from threadline.local.seed import question_pool

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("attempt", "suffix"), [(1, ""), (2, "-2"), (7, "-7")])
def test_execution_name_is_the_backfill_id_then_one_suffix_per_resumption(attempt: int, suffix: str) -> None:
    # Given a backfill at some attempt
    now = datetime.now(UTC)
    job = Backfill(
        id=uuid4(),
        project_id=None,
        scope=Scope.UNLABELLED,
        state=State.RUNNING,
        attempt=attempt,
        execution_arn=None,
        ranges_total=0,
        ranges_done=0,
        threads_planned=0,
        threads_labelled=0,
        threads_unlabelled=None,
        failures=[],
        error=None,
        cutoff=now,
        started_at=now,
        finished_at=None,
    )
    # When / Then: execution names must be unique per state machine, so a resumption gets its own
    assert job.execution_name == f"{job.id}{suffix}"


def test_seed_questions_are_many_distinct_and_of_every_kind() -> None:
    # Given / When
    pool = question_pool()
    # Then there are tens of thousands of distinct questions, each starting upper case
    assert len(pool) == len(set(pool)) > 15_000
    assert all(q[0].isupper() for q in pool)
    assert any("charged" in q for q in pool) and any("error" in q.lower() for q in pool)
