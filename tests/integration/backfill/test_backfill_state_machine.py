"""The backfill state machine deployed from template.yaml into the local cloud, driven through the real API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from threadline.adapters.aws.clients import stepfunctions_for
from threadline.bootstrap import Container
from threadline.domain import tenancy
from threadline.local.cloud import LocalCloud
from threadline.settings import Settings

from .conftest import Seeded, labels, seed

# Slow: thousands of seeded threads through the real state machine, and a range's retries backing off 1 + 2 + 4 s.
pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass
class Api:
    """The app on the local cloud's settings, a key of the seeded project, and the seeded data."""

    client: TestClient
    headers: dict[str, str]
    seeded: Seeded
    container: Container

    def start(self, scope: str = "unlabelled") -> Any:
        return self.client.post(
            f"/query/v1/projects/{self.seeded.project_id}/backfills/", json={"scope": scope}, headers=self.headers
        )

    def get(self, backfill_id: str) -> dict[str, Any]:
        response = self.client.get(
            f"/query/v1/projects/{self.seeded.project_id}/backfills/{backfill_id}/", headers=self.headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait(self, backfill_id: str, until: str = "ended", timeout_s: float = 180.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            body = self.get(backfill_id)
            if (until == "ended" and body["state"] != "running") or (until == "progress" and body["ranges_done"] >= 2):
                return body
            time.sleep(0.2)
        raise TimeoutError(f"backfill {backfill_id} still running: {body}")


def _api(local_cloud: LocalCloud, settings: Settings, embedder: object, **environment: str) -> Iterator[Api]:
    handler_env = {
        "DATABASE_URL": settings.database_url,
        "EMBEDDING_TOKENIZER_PATH": str(settings.embedding_tokenizer_path),
        **environment,
    }
    with local_cloud.session(**handler_env):
        container = Container(local_cloud.settings(settings))
        container.__dict__["embedder"] = embedder
        seeded = seed(container, 3000)
        key = tenancy.issue_api_key(container.tenancy, seeded.project_id).key
        from threadline.api.app import create_app

        with TestClient(create_app(container)) as client:
            yield Api(client=client, headers={"X-API-KEY": key}, seeded=seeded, container=container)
        container.close()


@pytest.fixture
def api(local_cloud: LocalCloud, settings: Settings, embedder: object) -> Iterator[Api]:
    """Ranges of 300 threads, two at a time."""
    yield from _api(local_cloud, settings, embedder, BACKFILL_RANGE_SIZE="300", BACKFILL_MAP_CONCURRENCY="2")


@pytest.fixture
def slow_api(local_cloud: LocalCloud, settings: Settings, embedder: object) -> Iterator[Api]:
    """Ranges of 100 threads, one at a time: slow enough to be stopped midway."""
    yield from _api(local_cloud, settings, embedder, BACKFILL_RANGE_SIZE="100", BACKFILL_MAP_CONCURRENCY="1")


def _unlabelled(before: dict[UUID, tuple[Any, ...]]) -> set[UUID]:
    return {t for t, (category, _, _) in before.items() if category is None}


def test_the_state_machine_labels_every_unlabelled_thread_and_no_user_label(api: Api) -> None:
    # Given a few thousand seeded threads, some labelled by users
    before = labels(api.container, api.seeded.project_id)
    user = {t: v for t, v in before.items() if v[1] == "user"}
    assert user and len(_unlabelled(before)) > 1000
    # When a backfill is started through the API and a second one is asked for while it runs
    started = api.start()
    second = api.start()
    done = api.wait(started.json()["id"])
    # Then the first is accepted, the second is refused with the first's id, and the first succeeds
    assert started.status_code == 202 and started.json()["state"] == "running"
    assert second.status_code == 409
    assert second.json()["error"]["details"]["running_id"] == started.json()["id"]
    assert done["state"] == "succeeded", done
    assert done["ranges_done"] == done["ranges_total"] >= 4
    assert done["threads_labelled"] == len(_unlabelled(before)) and done["failures"] == []
    assert done["finished_at"] is not None
    after = labels(api.container, api.seeded.project_id)
    assert all(after[t][1] == "auto" for t in _unlabelled(before))
    assert {t: after[t] for t in user} == user


def test_a_stopped_execution_resumes_without_relabelling(slow_api: Api) -> None:
    # Given a backfill stopped after a few ranges
    api = slow_api
    before = labels(api.container, api.seeded.project_id)
    started = api.start().json()
    api.wait(started["id"], until="progress")
    execution_arn = api.container.backfills.get(UUID(started["id"]), None).execution_arn
    assert execution_arn is not None
    settings = api.container.settings
    stepfunctions_for(settings.aws_endpoint_url, settings.aws_region).stop_execution(executionArn=execution_arn)
    stopped = api.wait(started["id"])
    time.sleep(1.0)  # a range already in flight when the stop came may still finish
    labelled_in_first_run = {t: v for t, v in labels(api.container, api.seeded.project_id).items() if v != before[t]}
    # When it is started again
    resumed = api.start()
    done = api.wait(resumed.json()["id"])
    # Then the same job resumes and finishes; what the first run labelled was not labelled again
    assert stopped["state"] == "stopped" and 0 < stopped["ranges_done"] < stopped["ranges_total"]
    assert resumed.status_code == 202 and resumed.json()["id"] == started["id"] and resumed.json()["resumed"]
    assert done["state"] == "succeeded" and done["attempt"] == 2 and done["threads_unlabelled"] == 0, done
    assert done["resumed"] is True  # every read of a resumed backfill says so, not only the start's response
    after = labels(api.container, api.seeded.project_id)
    assert labelled_in_first_run and all(after[t] == v for t, v in labelled_in_first_run.items())
    assert done["threads_labelled"] == len(_unlabelled(before))
    assert all(after[t][1] == "auto" for t in _unlabelled(before))


@pytest.mark.timeout(900)  # the failing range's retries back off (1 + 2 + 4 s, jittered) on two shared cores
def test_a_failing_range_is_retried_then_reported(api: Api) -> None:
    # Given a database that refuses, as if shutting down, to label one particular unlabelled thread
    before = labels(api.container, api.seeded.project_id)
    poisoned = min(_unlabelled(before))
    with api.container.db.transaction() as conn:
        conn.execute(
            "CREATE FUNCTION refuse_label() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN RAISE EXCEPTION 'injected failure' USING ERRCODE = '57P01'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse_label BEFORE UPDATE ON threads FOR EACH ROW"
            f" WHEN (OLD.id = '{poisoned}'::uuid) EXECUTE FUNCTION refuse_label()"
        )
    # When a backfill runs
    done = api.wait(api.start().json()["id"], timeout_s=600.0)
    # Then the range holding that thread was tried four times (TransientError: 1 + 3 retries); one failed range
    # of several is more than the Map's ToleratedFailurePercentage (5%), so the Map Run failed with
    # States.ExceedToleratedFailureThreshold, its Catch passed that to Summarize, and the failed range is recorded
    assert done["state"] == "failed", done
    assert done["error"] == "States.ExceedToleratedFailureThreshold"
    assert [f["attempts"] for f in done["failures"]] == [4]
    assert "Unavailable" in done["failures"][0]["error"]
    assert done["ranges_done"] == done["ranges_total"] - 1 >= 4
    assert labels(api.container, api.seeded.project_id)[poisoned] == before[poisoned]
