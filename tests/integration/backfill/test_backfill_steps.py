"""The backfill's steps on a real database with the real classifier (no state machine here)."""

from __future__ import annotations

from itertools import pairwise
from uuid import UUID

import pytest

from threadline.bootstrap import Container
from threadline.domain import backfill
from threadline.domain.backfill import Scope, State
from threadline.domain.errors import Conflict

from .conftest import Seeded, labels


def _run_all_ranges(container: Container, job_id: UUID, attempt: int, range_size: int) -> int:
    ranges = container.backfills.plan(job_id, attempt, range_size)
    return sum(backfill.classify_range(container.backfills, container.classifier, job_id, r.ordinal) for r in ranges)


@pytest.mark.integration
def test_plan_covers_exactly_the_threads_in_scope(container: Container, seeded: Seeded) -> None:
    # Given a backfill of the unlabelled threads of one project
    job = container.backfills.begin(seeded.project_id, Scope.UNLABELLED).backfill
    # When it is planned in ranges of 100
    ranges = container.backfills.plan(job.id, job.attempt, 100)
    # Then the ranges are ordered, disjoint, at most 100 threads each, and add up to the unlabelled threads
    with container.db.transaction() as conn:
        unlabelled = conn.execute(
            "SELECT count(*) AS n FROM threads WHERE project_id = %(p)s AND category_id IS NULL",
            {"p": seeded.project_id},
        ).fetchone()
    assert unlabelled is not None and unlabelled["n"] > 300
    assert sum(r.planned for r in ranges) == unlabelled["n"]
    assert all(0 < r.planned <= 100 for r in ranges)
    assert all(a.next_id == b.first_id for a, b in pairwise(ranges))
    assert ranges[-1].next_id is None
    assert {r.project_id for r in ranges} == {seeded.project_id}


@pytest.mark.integration
def test_unlabelled_backfill_labels_them_all_and_leaves_other_labels(container: Container, seeded: Seeded) -> None:
    # Given the seeded labels
    before = labels(container, seeded.project_id)
    other_before = labels(container, seeded.other_project_id)
    job = container.backfills.begin(seeded.project_id, Scope.UNLABELLED).backfill
    # When every range is classified and the job summarized
    labelled = _run_all_ranges(container, job.id, job.attempt, 250)
    done = backfill.summarize(container.backfills, job.id, job.attempt, None)
    # Then every unlabelled thread has an auto label, and no existing label (user or auto) changed
    after = labels(container, seeded.project_id)
    unlabelled = [t for t, (category, _, _) in before.items() if category is None]
    assert labelled == len(unlabelled) == done.threads_labelled
    assert all(after[t][1] == "auto" and after[t][0] is not None for t in unlabelled)
    assert {t: v for t, v in after.items() if t not in unlabelled} == {
        t: v for t, v in before.items() if t not in unlabelled
    }
    assert labels(container, seeded.other_project_id) == other_before
    assert done.state is State.SUCCEEDED and done.ranges_done == done.ranges_total and not done.failures


@pytest.mark.integration
def test_relabel_touches_auto_labels_once_and_never_user_labels(container: Container, seeded: Seeded) -> None:
    # Given a relabel of the auto-labelled threads
    before = labels(container, seeded.project_id)
    auto = {t for t, (_, source, _) in before.items() if source == "auto"}
    job = container.backfills.begin(seeded.project_id, Scope.RELABEL_AUTO).backfill
    # When it runs, and its ranges are run a second time (a retried or resumed execution)
    first = _run_all_ranges(container, job.id, job.attempt, 40)
    ranges = container.backfills.get(job.id, None).ranges_total
    again = sum(
        backfill.classify_range(container.backfills, container.classifier, job.id, ordinal) for ordinal in range(ranges)
    )
    # Then each auto label was rewritten exactly once, and user labels and unlabelled threads are as they were
    after = labels(container, seeded.project_id)
    assert first == len(auto) > 0 and again == 0
    assert all(after[t][2] > before[t][2] for t in auto)
    assert {t: v for t, v in after.items() if t not in auto} == {t: v for t, v in before.items() if t not in auto}


@pytest.mark.integration
def test_threads_created_after_the_start_are_left_to_the_sqs_path(container: Container, seeded: Seeded) -> None:
    # Given a planned backfill, then a new thread of the project
    job = container.backfills.begin(seeded.project_id, Scope.UNLABELLED).backfill
    ranges = container.backfills.plan(job.id, job.attempt, 500)
    with container.db.transaction() as conn:
        row = conn.execute(
            "INSERT INTO threads (project_id, first_question, created_at) VALUES (%(p)s, 'How do I export?', now())"
            " RETURNING id",
            {"p": seeded.project_id},
        ).fetchone()
    assert row is not None
    # When every range runs
    for r in ranges:
        backfill.classify_range(container.backfills, container.classifier, job.id, r.ordinal)
    # Then the new thread is untouched (its classify message labels it)
    assert labels(container, seeded.project_id)[row["id"]] == (None, None, None)


@pytest.mark.integration
def test_one_running_backfill_per_project(container: Container, seeded: Seeded) -> None:
    # Given a running backfill of one project
    running = container.backfills.begin(seeded.project_id, Scope.UNLABELLED).backfill
    # When the same project, or every project, asks for another
    with pytest.raises(Conflict) as same:
        container.backfills.begin(seeded.project_id, Scope.RELABEL_AUTO)
    with pytest.raises(Conflict) as everything:
        container.backfills.begin(None, Scope.UNLABELLED)
    other = container.backfills.begin(seeded.other_project_id, Scope.UNLABELLED).backfill
    # Then both are refused with the running one's id, while another project may start its own
    assert same.value.details["running_id"] == everything.value.details["running_id"] == str(running.id)
    assert other.state is State.RUNNING


@pytest.mark.integration
def test_a_stopped_backfill_resumes_and_skips_finished_ranges(container: Container, seeded: Seeded) -> None:
    # Given a backfill stopped after its first range
    job = container.backfills.begin(seeded.project_id, Scope.UNLABELLED).backfill
    ranges = container.backfills.plan(job.id, job.attempt, 200)
    backfill.classify_range(container.backfills, container.classifier, job.id, ranges[0].ordinal)
    container.backfills.end(job.id, job.attempt, State.STOPPED, "execution aborted")
    first_done = labels(container, seeded.project_id)
    # When it is started again
    resumed = container.backfills.begin(seeded.project_id, Scope.UNLABELLED)
    pending = container.backfills.plan(job.id, resumed.backfill.attempt, 200)
    # Then it is the same job, its first range is not planned again, and its labels stay as they were
    assert resumed.resumed and resumed.backfill.id == job.id and resumed.backfill.attempt == 2
    assert [r.ordinal for r in pending] == [r.ordinal for r in ranges[1:]]
    for r in pending:
        backfill.classify_range(container.backfills, container.classifier, job.id, r.ordinal)
    done = backfill.summarize(container.backfills, job.id, 2, None)
    after = labels(container, seeded.project_id)
    assert all(after[t] == v for t, v in first_done.items() if v[1] is not None)
    assert done.state is State.SUCCEEDED and done.execution_name == f"{job.id}-2"


@pytest.mark.integration
def test_threads_added_while_it_runs_make_it_incomplete_counted_at_the_end(
    container: Container, seeded: Seeded
) -> None:
    # Given a backfill planned over the project's unlabelled threads
    job = container.backfills.begin(seeded.project_id, Scope.UNLABELLED).backfill
    ranges = container.backfills.plan(job.id, job.attempt, 250)
    # And an import that, meanwhile, adds 7 threads from last year (before the cutoff: in the backfill's scope)
    # whose ids sort before every planned range (ranges cover [first_id, next_id): these fall outside all)
    with container.db.transaction() as conn:
        conn.execute(
            "INSERT INTO threads (id, project_id, first_question, message_count, created_at)"
            " SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, %(p)s,"
            "        'imported question ' || i, 1, now() - interval '365 days'"
            " FROM generate_series(1, 7) AS i",
            {"p": seeded.project_id},
        )
    assert min(r.first_id for r in ranges) > UUID("00000000-0000-4000-8000-000000000007")
    # When every planned range is classified and the job summarized
    for r in ranges:
        backfill.classify_range(container.backfills, container.classifier, job.id, r.ordinal)
    done = backfill.summarize(container.backfills, job.id, job.attempt, None)
    # Then it does not claim success: every range ran, but the 7 threads of its scope are counted unlabelled
    assert done.ranges_done == done.ranges_total and not done.failures
    assert done.state is State.INCOMPLETE and done.threads_unlabelled == 7
    assert container.backfills.get(job.id, seeded.project_id).threads_unlabelled == 7
    # And a new backfill labels them, and succeeds with none left
    again = container.backfills.begin(seeded.project_id, Scope.UNLABELLED)
    assert again.backfill.id != job.id and not again.resumed
    for r in container.backfills.plan(again.backfill.id, 1, 250):
        backfill.classify_range(container.backfills, container.classifier, again.backfill.id, r.ordinal)
    finished = backfill.summarize(container.backfills, again.backfill.id, 1, None)
    assert finished.state is State.SUCCEEDED and finished.threads_unlabelled == 0 and finished.threads_labelled == 7
