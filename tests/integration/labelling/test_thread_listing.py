"""The thread listing: newest first, keyset pages, filters, validation, and the plans it runs on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.fixtures.app import ProjectKey
from tests.integration.labelling.conftest import SeedThreads
from tests.integration.labelling.support import category_ids
from threadline.adapters.postgres.labels import listing_sql
from threadline.bootstrap import Container
from threadline.domain.labels import ThreadQuery
from threadline.domain.pagination import Cursor, PageRequest

Make = Callable[[str], ProjectKey]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _url(project: ProjectKey) -> str:
    return f"/query/v1/projects/{project.id}/threads/"


def _all_pages(client: TestClient, project: ProjectKey, **params: object) -> list[dict[str, object]]:
    seen: list[dict[str, object]] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = client.get(_url(project), params=query, headers=project.headers).json()
        seen.extend(page["results"])
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


@pytest.fixture
def labelled(client: TestClient, make_project: Make, seed_threads: SeedThreads) -> tuple[ProjectKey, list[UUID]]:
    """Seven threads a minute apart (two sharing a timestamp): 0-1 user Troubleshooting, 2-3 auto Discovery."""
    project = make_project("listing")
    times = [T0 + timedelta(minutes=i) for i in range(6)] + [T0 + timedelta(minutes=5)]
    threads = seed_threads(project.id, [f"question {i}" for i in range(7)], created_at=times)
    ids = category_ids(client, project)
    for thread in threads[:2]:
        client.patch(
            f"/query/v1/threads/{thread}/", json={"category_id": str(ids["Troubleshooting"])}, headers=project.headers
        )
    container: Container = client.app.state.container  # type: ignore[attr-defined]
    decisions = container.classifier.classify(project.id, [(t, "How do I get started?") for t in threads[2:4]])
    container.labels.apply_auto_labels(project.id, decisions)
    return project, threads


@pytest.mark.integration
def test_pages_walk_every_thread_newest_first_once(client: TestClient, labelled: tuple[ProjectKey, list[UUID]]) -> None:
    # Given seven threads, two of them created at the same instant
    project, threads = labelled
    # When the listing is walked two at a time
    walked = _all_pages(client, project, limit=2)
    # Then every thread appears once, newest first (ties broken by id, descending)
    expected = sorted(threads, key=lambda t: (threads.index(t) if threads.index(t) < 6 else 5, str(t)), reverse=True)
    assert [UUID(str(r["id"])) for r in walked] == expected
    first = client.get(_url(project), params={"limit": 50}, headers=project.headers).json()
    assert first["next_cursor"] is None and len(first["results"]) == 7


@pytest.mark.integration
def test_items_carry_label_question_count_and_times(
    client: TestClient, labelled: tuple[ProjectKey, list[UUID]]
) -> None:
    project, threads = labelled
    items = {UUID(r["id"]): r for r in client.get(_url(project), headers=project.headers).json()["results"]}
    user, auto, unlabelled = items[threads[0]], items[threads[2]], items[threads[5]]
    assert user["category"]["name"] == "Troubleshooting" and user["label_source"] == "user"
    assert auto["category"]["name"] == "Discovery" and auto["label_source"] == "auto"
    assert 0 < auto["label_confidence"] <= 1 and auto["label_model"].startswith("embedding:")
    assert unlabelled["category"] is None and unlabelled["label_source"] is None
    assert unlabelled["first_question"] == "question 5" and unlabelled["message_count"] == 1
    assert unlabelled["created_at"].startswith("2026-01-01T00:05:00")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"unlabelled": "true"}, [6, 5, 4]),
        ({"label_source": "user"}, [1, 0]),
        ({"label_source": "auto"}, [3, 2]),
        ({"created_after": "2026-01-01T00:01:00Z", "created_before": "2026-01-01T00:04:00Z"}, [3, 2]),
    ],
)
def test_filters(
    client: TestClient, labelled: tuple[ProjectKey, list[UUID]], params: dict[str, str], expected: list[int]
) -> None:
    project, threads = labelled
    walked = _all_pages(client, project, limit=1, **params)
    got = [threads.index(UUID(str(r["id"]))) for r in walked]
    # Threads 5 and 6 share a timestamp, so only their set is fixed.
    assert sorted(got) == sorted(expected) and got[-len(expected) + 2 :] == expected[-len(expected) + 2 :]


@pytest.mark.integration
def test_category_filter(client: TestClient, labelled: tuple[ProjectKey, list[UUID]]) -> None:
    project, threads = labelled
    ids = category_ids(client, project)
    walked = _all_pages(client, project, limit=1, category_id=str(ids["Troubleshooting"]))
    assert [UUID(str(r["id"])) for r in walked] == [threads[1], threads[0]]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "bm9wZXxub3Bl"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"label_source": "robot"}, "label_source"),
        ({"unlabelled": "true", "label_source": "user"}, "unlabelled"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_after": "2026-01-01T00:00:00"}, "created_after"),
        ({"category_id": "x"}, "category_id"),
        ({"category": "Billing"}, "category"),
    ],
)
def test_bad_parameters_are_422_naming_them(
    client: TestClient, make_project: Make, params: dict[str, object], field: str
) -> None:
    project = make_project("bad")
    response = client.get(_url(project), params=params, headers=project.headers)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and error["details"]["field"] == field


@pytest.mark.integration
def test_other_projects_threads_are_not_listed(
    client: TestClient, make_project: Make, seed_threads: SeedThreads
) -> None:
    project, other = make_project("mine"), make_project("theirs")
    seed_threads(other.id, ["theirs"])
    assert client.get(_url(project), headers=project.headers).json() == {"results": [], "next_cursor": None}
    assert client.get(_url(other), headers=project.headers).status_code == 404


def _plan(database_url: str, query: ThreadQuery, project_id: UUID) -> str:
    sql, params = listing_sql(query)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("EXPLAIN " + sql, {**params, "project_id": project_id}).fetchall()  # type: ignore[operator]
    return "\n".join(r[0] for r in rows)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("query", "index"),
    [
        (ThreadQuery(PageRequest(50)), "threads_project_created_idx"),
        (
            ThreadQuery(PageRequest(50, Cursor.after(T0 + timedelta(days=10), UUID(int=0)))),
            "threads_project_created_idx",
        ),
        (ThreadQuery(PageRequest(50), unlabelled=True), "threads_project_unlabelled_idx"),
        (ThreadQuery(PageRequest(50), label_source="user"), "threads_project_user_labelled_idx"),
        ("category", "threads_project_category_created_idx"),
    ],
)
def test_listing_plans_use_the_keyset_indexes(
    container: Container, make_project: Make, query: ThreadQuery | str, index: str
) -> None:
    # Given a project with 20,000 threads over two categories and a user-labelled tenth, analysed
    project = make_project("plans")
    categories = container.categories.list_categories(project.id)
    db = container.settings.database_url
    with psycopg.connect(db) as conn:
        conn.execute(
            "INSERT INTO threads (project_id, first_question, created_at, category_id, label_source)"
            " SELECT %(p)s, 'q', %(t0)s + i * interval '1 second',"
            "  CASE WHEN i %% 3 = 0 THEN NULL WHEN i %% 2 = 0 THEN %(a)s::uuid ELSE %(b)s::uuid END,"
            "  CASE WHEN i %% 3 = 0 THEN NULL WHEN i %% 10 = 1 THEN 'user' ELSE 'auto' END"
            " FROM generate_series(1, 20000) AS i",
            {"p": project.id, "t0": T0, "a": categories[0].id, "b": categories[1].id},
        )
        conn.execute("ANALYZE threads")
    if query == "category":
        query = ThreadQuery(PageRequest(50), category_id=categories[0].id)
    assert isinstance(query, ThreadQuery)
    # When the listing query is explained / Then it reads the matching index, never sorting or offsetting
    plan = _plan(db, query, project.id)
    assert index in plan and "Sort" not in plan and "Seq Scan on threads" not in plan
