"""The backfill routes' error contract, on a real database (the happy path runs in the state machine tests)."""

from __future__ import annotations

from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from threadline.bootstrap import Container
from threadline.domain import tenancy
from threadline.domain.backfill import Scope, State

from .conftest import Seeded

pytestmark = pytest.mark.integration


@pytest.fixture
def headers(container: Container, seeded: Seeded) -> dict[str, str]:
    return {"X-API-KEY": tenancy.issue_api_key(container.tenancy, seeded.project_id).key}


def test_unknown_scope_is_422_json(client: TestClient, seeded: Seeded, headers: dict[str, str]) -> None:
    # Given / When
    response = client.post(
        f"/query/v1/projects/{seeded.project_id}/backfills/", json={"scope": "everything"}, headers=headers
    )
    # Then
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_input"
    assert response.json()["error"]["details"]["field"] == "scope"


def test_another_projects_backfill_looks_absent(
    client: TestClient, container: Container, seeded: Seeded, headers: dict[str, str]
) -> None:
    # Given a backfill of another project
    other = container.backfills.begin(seeded.other_project_id, Scope.UNLABELLED).backfill
    base = f"/query/v1/projects/{seeded.project_id}/backfills"
    # When the key asks for it through its own project, through the other project, and for a random id
    through_own = client.get(f"{base}/{other.id}/", headers=headers)
    through_other = client.get(f"/query/v1/projects/{seeded.other_project_id}/backfills/{other.id}/", headers=headers)
    missing = client.get(f"{base}/{uuid4()}/", headers=headers)
    # Then all three are the same 404
    assert through_own.status_code == through_other.status_code == missing.status_code == 404
    assert through_own.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"


def test_without_a_state_machine_the_start_is_503_and_blocks_nothing(
    client: TestClient, container: Container, seeded: Seeded, headers: dict[str, str]
) -> None:
    # Given no BACKFILL_STATE_MACHINE_ARN
    assert not container.settings.backfill_state_machine_arn
    # When a backfill is asked for
    response = client.post(f"/query/v1/projects/{seeded.project_id}/backfills/", json={}, headers=headers)
    # Then it is unavailable, and nothing is left running to block a later start
    assert response.status_code == 503 and response.json()["error"]["code"] == "unavailable"
    assert container.backfills.begin(seeded.project_id, Scope.UNLABELLED).resumed is False


def test_backfills_are_listed_newest_first_as_each_reads(
    client: TestClient, container: Container, seeded: Seeded, headers: dict[str, str]
) -> None:
    # Given a stopped backfill with a failed range, a running one of the other scope, and another project's
    repo = container.backfills
    stopped = repo.begin(seeded.project_id, Scope.UNLABELLED).backfill
    repo.plan(stopped.id, stopped.attempt, 500)
    repo.record_range_error(stopped.id, 0, "boom")
    repo.end(stopped.id, stopped.attempt, State.STOPPED, None)
    running = repo.begin(seeded.project_id, Scope.RELABEL_AUTO).backfill
    repo.begin(seeded.other_project_id, Scope.UNLABELLED)
    base = f"/query/v1/projects/{seeded.project_id}/backfills/"
    # When they are listed one per page
    first = client.get(base, params={"limit": 1}, headers=headers).json()
    second = client.get(base, params={"limit": 1, "cursor": first["next_cursor"]}, headers=headers).json()
    # Then the project's two come newest first, each as GET shows it (failures included), and nothing else
    assert [b["id"] for b in first["results"] + second["results"]] == [str(running.id), str(stopped.id)]
    assert second["next_cursor"] is None
    for listed in first["results"] + second["results"]:
        assert listed == client.get(f"{base}{listed['id']}/", headers=headers).json()
    assert second["results"][0]["state"] == "stopped" and second["results"][0]["failures"][0]["error"] == "boom"
