"""Metrics, statistics and alerts on the real database, through the MetricsFunction handler and the API."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.fixtures.app import ProjectKey
from tests.integration.metrics.conftest import FakeLambdaContext, sqs_event
from threadline.bootstrap import Container
from threadline.domain.alerts import AlertFilter, measure_message

AddMessage = Callable[..., tuple[UUID, UUID]]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _body(project_id: UUID, thread_id: UUID, message_id: UUID) -> str:
    return json.dumps(
        {
            "kind": "measure_interaction",
            "project_id": str(project_id),
            "thread_id": str(thread_id),
            "message_id": str(message_id),
        }
    )


def _count(url: str, sql: str, *params: object) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return int(row[0])


@pytest.mark.integration
@pytest.mark.usefixtures("lambda_env")
def test_handler_stores_metrics_and_a_threshold_alert_once(
    app_container: Container, make_project: Callable[[str], ProjectKey], add_message: AddMessage
) -> None:
    from threadline.handlers.metrics import lambda_handler

    # Given an answer longer than the default 2000-character threshold, and its queue message
    project = make_project("long")
    thread_id, message_id = add_message(project.id, answer="x" * 2500, latency_ms=800, first_token_ms=120)
    event = sqs_event("measure_interaction.json", [_body(project.id, thread_id, message_id)])
    # When the MetricsFunction handles it twice (a redelivery)
    first = lambda_handler(event, FakeLambdaContext())
    second = lambda_handler(event, FakeLambdaContext())
    # Then both succeed, the metrics are stored once and the threshold alert exists once
    url = app_container.settings.database_url
    assert first["batchItemFailures"] == second["batchItemFailures"] == []
    assert _count(url, "SELECT count(*) FROM interaction_metrics WHERE message_id = %s", message_id) == 5
    with psycopg.connect(url) as conn:
        alerts = conn.execute(
            "SELECT metric, value, kind, rule_name, thread_id FROM alerts WHERE message_id = %s", (message_id,)
        ).fetchall()
        n = conn.execute("SELECT n FROM metric_stats WHERE project_id = %s AND metric = 'answer_length'", (project.id,))
        assert n.fetchone() == (1,)
    assert alerts == [("answer_length", 2500.0, "threshold", "answer_length > 2000", thread_id)]


@pytest.mark.integration
@pytest.mark.usefixtures("lambda_env")
def test_bad_records_are_reported_as_batch_item_failures(
    make_project: Callable[[str], ProjectKey], add_message: AddMessage
) -> None:
    from threadline.handlers.metrics import lambda_handler

    # Given a batch with one good record and one malformed
    project = make_project("batch")
    thread_id, message_id = add_message(project.id)
    event = sqs_event("measure_interaction.json", [_body(project.id, thread_id, message_id), '{"kind": "nope"}'])
    # When it is handled
    response = lambda_handler(event, FakeLambdaContext())
    # Then only the malformed one is handed back for redelivery
    assert response["batchItemFailures"] == [{"itemIdentifier": event["Records"][1]["messageId"]}]


@pytest.mark.integration
def test_outlier_fires_after_min_samples_with_numpy_statistics(
    app_container: Container, make_project: Callable[[str], ProjectKey], add_message: AddMessage
) -> None:
    # Given a project whose answers have lengths around 400, measured one by one as the queue delivers them
    project = make_project("outliers")
    rng = np.random.default_rng(3)
    lengths = [int(v) for v in rng.normal(400, 40, 35)]
    for i, length in enumerate(lengths):
        _, message_id = add_message(project.id, answer="y" * length, at=T0 + timedelta(minutes=i))
        measure_message(app_container.alerts, project.id, message_id)
    early = _count(app_container.settings.database_url, "SELECT count(*) FROM alerts WHERE kind = 'outlier'")
    # When an answer far from the mean arrives
    thread_id, odd_id = add_message(project.id, answer="z" * 1500, at=T0 + timedelta(hours=2))
    measure_message(app_container.alerts, project.id, odd_id)
    # Then it raises an outlier alert recording numpy's mean and stddev of the history before it
    page = app_container.alerts.list_alerts(project.id, AlertFilter(kind="outlier"))
    assert [a.message_id for a in page] == [odd_id]
    alert = page[0]
    assert alert.metric == "answer_length" and alert.value == 1500.0 and alert.thread_id == thread_id
    assert alert.sample_count == 35
    assert alert.mean == pytest.approx(np.mean(lengths), rel=1e-9)
    assert alert.stddev == pytest.approx(np.std(lengths), rel=1e-9)
    # And the first 30 answers (below min_samples) could not raise one, and the statistics include every value
    assert early == 0
    stats = app_container.alerts.stats(project.id)["answer_length"]
    assert stats.n == 36 and stats.mean == pytest.approx(np.mean([*lengths, 1500]), rel=1e-9)
    assert stats.stddev == pytest.approx(np.std([*lengths, 1500]), rel=1e-9)


@pytest.mark.integration
def test_recomputing_changes_neither_statistics_nor_alerts(
    app_container: Container, make_project: Callable[[str], ProjectKey], add_message: AddMessage
) -> None:
    # Given measured interactions, some alerting
    project = make_project("recompute")
    ids = [add_message(project.id, answer="a" * n, latency_ms=n * 3)[1] for n in (100, 2100, 300, 2500)]
    for message_id in ids:
        measure_message(app_container.alerts, project.id, message_id)
    url = app_container.settings.database_url
    before = (app_container.alerts.stats(project.id), _count(url, "SELECT count(*) FROM alerts"))
    # When every interaction is measured again
    for message_id in ids:
        assert measure_message(app_container.alerts, project.id, message_id) == []
    # Then the statistics and the alerts are exactly as they were
    assert (app_container.alerts.stats(project.id), _count(url, "SELECT count(*) FROM alerts")) == before
    assert before[1] == 4  # two answer_length > 2000 and two latency_ms > 5000


@pytest.mark.integration
def test_another_projects_message_is_not_measured(
    app_container: Container, make_project: Callable[[str], ProjectKey], add_message: AddMessage
) -> None:
    # Given a message of project A, named in a message that claims project B
    a, b = make_project("A"), make_project("B")
    _, message_id = add_message(a.id)
    # When it is measured under B, Then nothing is stored
    assert measure_message(app_container.alerts, b.id, message_id) is None
    assert _count(app_container.settings.database_url, "SELECT count(*) FROM interaction_metrics") == 0


@pytest.mark.integration
def test_alert_listing_filters_and_pages(
    api: TestClient, app_container: Container, make_project: Callable[[str], ProjectKey], add_message: AddMessage
) -> None:
    # Given 5 long answers in one thread and 2 slow ones in another, an hour apart
    project = make_project("listing")
    long_thread, _ = add_message(project.id, answer="l" * 2100, at=T0)
    for i in range(1, 5):
        add_message(project.id, answer="l" * 2100, thread_id=long_thread, at=T0 + timedelta(hours=i))
    slow_thread, _ = add_message(project.id, latency_ms=9000, at=T0 + timedelta(hours=5))
    add_message(project.id, latency_ms=9000, thread_id=slow_thread, at=T0 + timedelta(hours=6))
    with psycopg.connect(app_container.settings.database_url) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM messages WHERE project_id = %s", (project.id,))]
    for message_id in ids:
        measure_message(app_container.alerts, project.id, message_id)
    url = f"/query/v1/projects/{project.id}/alerts/"
    # When pages of two are walked
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = api.get(url, params={"limit": 2, **({"cursor": cursor} if cursor else {})}, headers=project.headers)
        assert page.status_code == 200
        seen += [a["occurred_at"] for a in page.json()["results"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    # Then all 7 come newest first without repeats, and each filter narrows them
    assert len(seen) == 7 and seen == sorted(seen, reverse=True)

    def count(**params: str) -> int:
        response = api.get(url, params=params, headers=project.headers)
        assert response.status_code == 200
        return len(response.json()["results"])

    assert count(thread_id=str(slow_thread)) == 2
    assert count(metric="answer_length") == 5
    assert count(kind="threshold") == 7 and count(kind="outlier") == 0
    assert count(since=(T0 + timedelta(hours=1)).isoformat(), until=(T0 + timedelta(hours=5)).isoformat()) == 4
    # And bad input is a 422, and another project's key sees a 404
    assert api.get(url, params={"cursor": "garbage"}, headers=project.headers).status_code == 422
    assert api.get(url, params={"kind": "weird"}, headers=project.headers).status_code == 422
    # (the contract: an unknown metric, a time without a zone and an unknown filter are 422s naming the field)
    for params, field in (
        ({"metric": "bogus"}, "metric"),
        ({"since": "2026-01-01T00:00:00"}, "since"),
        ({"interaction_id": str(ids[0])}, "interaction_id"),
    ):
        refused = api.get(url, params=params, headers=project.headers)
        assert refused.status_code == 422, params
        assert (
            refused.json()["error"]["code"] == "invalid_input" and refused.json()["error"]["details"]["field"] == field
        )
    assert count(message_id=str(ids[0])) == len(
        [a for a in app_container.alerts.list_alerts(project.id, AlertFilter()) if a.message_id == ids[0]]
    )
    other = make_project("other")
    assert api.get(url, headers=other.headers).status_code == 404
    other_url = f"/query/v1/projects/{other.id}/alerts/"
    assert api.get(other_url, headers=other.headers).json() == {"results": [], "next_cursor": None}


@pytest.mark.integration
def test_metric_statistics_endpoint(
    api: TestClient, app_container: Container, make_project: Callable[[str], ProjectKey], add_message: AddMessage
) -> None:
    # Given two measured interactions
    project = make_project("stats")
    for n in (10, 30):
        measure_message(app_container.alerts, project.id, add_message(project.id, answer="s" * n)[1])
    # When the statistics are read
    listed = api.get(f"/query/v1/projects/{project.id}/metrics/", headers=project.headers).json()
    stats = {s["metric"]: s for s in listed["results"]}
    # Then they show count, mean and stddev per metric
    assert stats["answer_length"] == {
        "metric": "answer_length",
        "unit": "chars",
        "count": 2,
        "mean": 20.0,
        "stddev": 10.0,
    }


@pytest.mark.integration
def test_concurrent_workers_keep_statistics_exact(
    app_container: Container, make_project: Callable[[str], ProjectKey], add_message: AddMessage
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    # Given 40 interactions of one project, each delivered twice (a redelivery racing the first)
    project = make_project("race")
    lengths = [50 + 7 * i for i in range(40)]
    ids = [add_message(project.id, answer="r" * n)[1] for n in lengths]
    # When four workers measure them at once
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda m: measure_message(app_container.alerts, project.id, m), ids + ids))
    # Then each value counted exactly once: the statistics are numpy's over the 40 values
    stats = app_container.alerts.stats(project.id)["answer_length"]
    assert stats.n == 40
    assert stats.mean == pytest.approx(np.mean(lengths), rel=1e-9)
    assert stats.stddev == pytest.approx(np.std(lengths), rel=1e-9)


@pytest.mark.integration
def test_one_answers_metrics_and_alerts(
    api: TestClient, app_container: Container, make_project: Callable[[str], ProjectKey], add_message: AddMessage
) -> None:
    # Given a slow, long answer that was measured, and another project
    project = make_project("answer")
    thread_id, message_id = add_message(project.id, answer="a" * 2500, latency_ms=9000, at=T0)
    measure_message(app_container.alerts, project.id, message_id)
    other = make_project("answer-other")
    # When its metrics and alerts are read by its question_answer_id
    response = api.get(f"/query/v1/answers/{message_id}/", headers=project.headers)
    # Then they hold its own values and the two thresholds it crossed
    assert response.status_code == 200
    body = response.json()
    assert body["question_answer_id"] == str(message_id) and body["thread_id"] == str(thread_id)
    values = {m["metric"]: m["value"] for m in body["metrics"]}
    assert values["answer_length"] == 2500.0 and values["latency_ms"] == 9000.0
    assert sorted(a["metric"] for a in body["alerts"]) == ["answer_length", "latency_ms"]
    # And another project's key sees a 404, as for an answer that does not exist
    foreign = api.get(f"/query/v1/answers/{message_id}/", headers=other.headers)
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "not_found"


@pytest.mark.integration
def test_metric_statistics_page_like_every_list(
    api: TestClient, app_container: Container, make_project: Callable[[str], ProjectKey], add_message: AddMessage
) -> None:
    # Given a project with several measured metrics
    project = make_project("stat-pages")
    measure_message(app_container.alerts, project.id, add_message(project.id, latency_ms=120)[1])
    url = f"/query/v1/projects/{project.id}/metrics/"
    everything = [s["metric"] for s in api.get(url, headers=project.headers).json()["results"]]
    # When they are read two at a time
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = api.get(url, params={"limit": 2, **({"cursor": cursor} if cursor else {})}, headers=project.headers)
        seen += [s["metric"] for s in page.json()["results"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    # Then the pages hold every metric once, by name
    assert len(everything) >= 3 and seen == everything == sorted(everything)
