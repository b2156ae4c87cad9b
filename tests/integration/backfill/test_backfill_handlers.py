"""The backfill's Lambda handlers invoked with the sample events of events/stepfunctions/ (as `sam local invoke -e`)."""

from __future__ import annotations

import json

import pytest

from threadline.bootstrap import Container
from threadline.domain.backfill import Scope, State
from threadline.local.cloud import LocalCloud
from threadline.local.deploy import aws_client

from .conftest import Seeded, event

pytestmark = pytest.mark.integration


def test_plan_writes_the_manifest_the_map_reads(cloud: LocalCloud, container: Container, seeded: Seeded) -> None:
    # Given a started backfill
    job = container.backfills.begin(seeded.project_id, Scope.UNLABELLED).backfill
    # When Plan is invoked with the sample event
    result = cloud.invoke("BackfillPlanFunction", event("backfill_plan", backfill_id=job.id, attempt=job.attempt))
    # Then the manifest in the backfill bucket lists every planned range, and the Map's concurrency is passed on
    assert not result.errored, result.payload
    manifest = result.payload["manifest"]
    body = (
        aws_client("s3", cloud.deployment.endpoint, cloud.deployment.region)
        .get_object(Bucket=manifest["bucket"], Key=manifest["key"])["Body"]
        .read()
    )
    items = json.loads(body)
    assert items == [{"backfill_id": str(job.id), "ordinal": i} for i in range(result.payload["ranges"])]
    assert result.payload["ranges"] == container.backfills.get(job.id, None).ranges_total >= 1
    assert result.payload["max_concurrency"] >= 1


def test_summarize_after_a_caught_map_failure_records_failed(
    cloud: LocalCloud, container: Container, seeded: Seeded
) -> None:
    # Given a planned backfill none of whose ranges ran
    job = container.backfills.begin(seeded.project_id, Scope.UNLABELLED).backfill
    container.backfills.plan(job.id, job.attempt, 500)
    # When Summarize gets the Map's caught error (the sample event)
    result = cloud.invoke(
        "BackfillSummarizeFunction", event("backfill_summarize_caught", backfill_id=job.id, attempt=job.attempt)
    )
    # Then the job is failed, with the error and every range reported
    done = container.backfills.get(job.id, None)
    assert not result.errored and result.payload["state"] == "failed"
    assert done.state is State.FAILED and done.error == "States.ExceedToleratedFailureThreshold"
    assert [f.ordinal for f in done.failures] == list(range(done.ranges_total)) == result.payload["failed_ranges"]


def test_a_range_of_an_unknown_backfill_is_a_named_error(cloud: LocalCloud, seeded: Seeded) -> None:
    # Given / When ClassifyRange is invoked for a backfill that does not exist (the sample event's nil id)
    result = cloud.invoke("BackfillClassifyRangeFunction", event("backfill_classify_range"))
    # Then it fails with our domain error's name, which the state machine does not retry as transient
    assert result.errored and result.error_type == "NotFound"
