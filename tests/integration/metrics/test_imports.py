"""Bulk import through the API, S3 and SQS in moto, and the ImportFunction handler, on the real database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import boto3
import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.fixtures.app import ProjectKey
from tests.integration.metrics.conftest import Cloud, drain
from threadline.bootstrap import Container
from threadline.domain.imports import process_chunk
from threadline.messages import ClassifyThread

HEADER = "question,answer,timestamp,latency_ms,thread\n"


def _csv(rows: list[str]) -> bytes:
    return (HEADER + "\n".join(rows) + "\n").encode()


def _url(project: ProjectKey, job_id: str | None = None) -> str:
    base = f"/query/v1/projects/{project.id}/interactions/import/"
    return f"{base}{job_id}/" if job_id else base


def _rows(url: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def _bodies(endpoint: str, queue_url: str) -> list[str]:
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    bodies: list[str] = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [m["Body"] for m in messages]
        for m in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


def _run_worker(cloud: Cloud) -> int:
    from threadline.handlers.imports import lambda_handler

    return drain(cloud.import_queue_url, cloud.endpoint, lambda_handler)


GOOD_AND_BAD = [
    'How do I log in?,"Use SSO, then your email.",2026-01-05T10:00:00Z,1200,t1',
    "And after that?,Pick a workspace.,2026-01-05T10:01:00Z,900,t1",
    "Export data?," + "long " * 500 + ",2026-01-06T09:00:00Z,7000,",
    "broken row,only two fields",
    "When?,Now.,not-a-date,,",
    ",No question.,2026-01-07T09:00:00Z,,",
    "Refund?,Yes within 30 days.,1767780000,300,",
]


@pytest.mark.integration
@pytest.mark.usefixtures("lambda_env")
def test_import_happy_path_with_rejected_rows(
    api: TestClient, app_container: Container, cloud: Cloud, make_project: Callable[[str], ProjectKey]
) -> None:
    # Given a project and a file of 7 rows (2 chunks of 4), 3 of them malformed, two sharing thread "t1"
    project = make_project("import")
    data = _csv(GOOD_AND_BAD)
    # When it is uploaded as multipart and the worker drains the queue
    created = api.post(_url(project), files={"file": ("past.csv", data, "text/csv")}, headers=project.headers)
    pending = api.get(_url(project, created.json()["id"]), headers=project.headers).json()
    handled = _run_worker(cloud)
    job = api.get(_url(project, created.json()["id"]), headers=project.headers).json()
    # Then the job was accepted, then finished with rows done and rows rejected with reasons
    assert created.status_code == 202 and pending["status"] == "pending" and pending["chunks_total"] == 2
    assert handled == 2
    assert {k: job[k] for k in ("status", "total_rows", "rows_done", "rows_rejected", "chunks_done", "errors")} == {
        "status": "done",
        "total_rows": 7,
        "rows_done": 4,
        "rows_rejected": 3,
        "chunks_done": 2,
        "errors": [],
    }
    assert [(r["row"], r["reason"].split(":")[0]) for r in job["rejections"]] == [
        (5, "expected 5 fields, found 2"),
        (6, "timestamp is not ISO 8601 or Unix seconds between 1970 and 2099"),
        (7, "question is empty"),
    ]
    # And threads, messages, metrics and alerts exist: rows of "t1" share a thread, the others have their own
    url = app_container.settings.database_url
    threads = _rows(url, "SELECT message_count, first_question FROM threads WHERE project_id = %s", project.id)
    assert sorted(threads) == [(1, "Export data?"), (1, "Refund?"), (2, "How do I log in?")]
    metrics = _rows(url, "SELECT metric, count(*) FROM interaction_metrics GROUP BY metric ORDER BY metric")
    assert metrics == [("answer_length", 4), ("latency_ms", 4), ("question_length", 4)]
    alerts = _rows(url, "SELECT metric, kind FROM alerts WHERE project_id = %s ORDER BY metric", project.id)
    assert alerts == [("answer_length", "threshold"), ("latency_ms", "threshold")]
    # And every new thread was queued for its label once (a thread spanning chunks is asked for once)
    classify = [ClassifyThread.model_validate_json(b) for b in _bodies(cloud.endpoint, cloud.classify_queue_url)]
    thread_ids = {r[0] for r in _rows(url, "SELECT id FROM threads WHERE project_id = %s", project.id)}
    assert sorted(str(m.thread_id) for m in classify) == sorted(str(t) for t in thread_ids)
    assert {m.project_id for m in classify} == {project.id}
    # And the listing of the project's imports shows the job as GET does
    assert api.get(_url(project), headers=project.headers).json() == {"results": [job], "next_cursor": None}


@pytest.mark.integration
@pytest.mark.usefixtures("lambda_env")
def test_same_file_twice_and_redelivered_chunks_do_not_duplicate(
    api: TestClient, app_container: Container, cloud: Cloud, make_project: Callable[[str], ProjectKey]
) -> None:
    # Given an imported file (as a text/csv body)
    project = make_project("dupes")
    data = _csv(GOOD_AND_BAD)
    headers = {**project.headers, "Content-Type": "text/csv"}
    first = api.post(_url(project), content=data, headers=headers)
    _run_worker(cloud)
    url = app_container.settings.database_url
    counts = "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM alerts), (SELECT sum(n) FROM metric_stats)"
    before = _rows(url, counts)
    # When the same file is uploaded again (also as multipart)
    again = api.post(_url(project), files={"file": ("copy.csv", data, "text/csv")}, headers=project.headers)
    handled = _run_worker(cloud)
    # And a chunk is processed again after a crash that lost its "done" mark (row-level idempotency)
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE import_chunks SET done_at = NULL WHERE job_id = %s AND chunk_no = 0", (first.json()["id"],)
        )
    redone = process_chunk(
        app_container.imports,
        app_container.alerts,
        app_container.import_files,
        app_container.classify_queue,
        (project.id, UUID(first.json()["id"]), 0),
    )
    # Then the second upload is the same job, nothing was enqueued, and nothing was duplicated
    assert first.status_code == 202 and again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert handled == 0 and redone is True
    assert _rows(url, counts) == before and before[0][0] == 4


@pytest.mark.integration
@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"question,answer\nq,a\n", "text/csv", "lacks required columns"),
        (b"", "text/csv", "empty"),
        (b"question,answer,timestamp\n\xff,a,1\n", "text/csv", "not UTF-8"),
        (b'question,answer,timestamp\n"q"x,a,1\n', "text/csv", "not valid CSV"),
        (b"question,answer,timestamp\nq,a,1\n", "application/json", "multipart/form-data"),
    ],
)
def test_malformed_files_are_a_clear_4xx_and_store_nothing(
    api: TestClient,
    app_container: Container,
    make_project: Callable[[str], ProjectKey],
    body: bytes,
    content_type: str,
    message: str,
) -> None:
    project = make_project("bad files")
    response = api.post(_url(project), content=body, headers={**project.headers, "Content-Type": content_type})
    assert response.status_code == 422 and message in response.json()["error"]["message"]
    assert _rows(app_container.settings.database_url, "SELECT count(*) FROM import_jobs") == [(0,)]


@pytest.mark.integration
def test_multipart_without_file_field_is_422(api: TestClient, make_project: Callable[[str], ProjectKey]) -> None:
    project = make_project("no file")
    response = api.post(_url(project), data={"other": "x"}, files={"nope": ("a.txt", b"x")}, headers=project.headers)
    assert response.status_code == 422 and "file" in response.json()["error"]["message"]


@pytest.mark.integration
@pytest.mark.usefixtures("lambda_env")
def test_jobs_and_their_data_are_per_project(
    api: TestClient, app_container: Container, cloud: Cloud, make_project: Callable[[str], ProjectKey]
) -> None:
    # Given project A imported a file
    a, b = make_project("A"), make_project("B")
    data = _csv(GOOD_AND_BAD[:2])
    job_a = api.post(_url(a), files={"file": ("a.csv", data)}, headers=a.headers).json()
    _run_worker(cloud)
    # When B reads A's job, and then imports the very same file
    peek = [api.get(_url(b, job_a["id"]), headers=b.headers), api.get(_url(a, job_a["id"]), headers=b.headers)]
    job_b = api.post(_url(b), files={"file": ("b.csv", data)}, headers=b.headers)
    _run_worker(cloud)
    # Then B sees 404s, and its own import is a separate job creating its own threads
    assert [r.status_code for r in peek] == [404, 404]
    assert [j["id"] for j in api.get(_url(b), headers=b.headers).json()["results"]] == [job_b.json()["id"]]
    assert job_b.status_code == 202 and job_b.json()["id"] != job_a["id"]
    per_project = _rows(
        app_container.settings.database_url,
        "SELECT project_id, count(*) FROM messages GROUP BY project_id ORDER BY count(*)",
    )
    assert sorted(n for _, n in per_project) == [2, 2] and {p for p, _ in per_project} == {a.id, b.id}


@pytest.mark.integration
def test_import_needs_configuration(app_container: Container, make_project: Callable[[str], ProjectKey]) -> None:
    from fastapi.testclient import TestClient

    from threadline.api.app import create_app

    # Given an API with no import bucket configured
    app_container.settings = app_container.settings.model_copy(update={"import_bucket": ""})
    project = make_project("unconfigured")
    with TestClient(create_app(app_container)) as client:
        # When a file is uploaded, Then the answer is a 503 JSON error, not a 500
        response = client.post(
            _url(project), files={"file": ("a.csv", _csv(GOOD_AND_BAD[:1]))}, headers=project.headers
        )
    assert response.status_code == 503 and response.json()["error"]["code"] == "unavailable"


@pytest.mark.integration
@pytest.mark.parametrize("as_multipart", [True, False])
def test_a_file_over_the_size_limit_is_refused(
    app_container: Container, make_project: Callable[[str], ProjectKey], as_multipart: bool
) -> None:
    from threadline.api.app import create_app

    # Given an API that takes files of at most 64 bytes
    app_container.settings = app_container.settings.model_copy(update={"import_max_bytes": 64})
    project = make_project("limits")
    data = _csv(GOOD_AND_BAD)
    with TestClient(create_app(app_container)) as client:
        # When a bigger file is uploaded
        if as_multipart:
            response = client.post(_url(project), files={"file": ("big.csv", data)}, headers=project.headers)
        else:
            headers = {**project.headers, "Content-Type": "text/csv"}
            response = client.post(_url(project), content=data, headers=headers)
    # Then it is a 422 naming the limit, and no job exists
    assert response.status_code == 422 and response.json()["error"]["details"] == {"max_bytes": 64}
    assert _rows(app_container.settings.database_url, "SELECT count(*) FROM import_jobs") == [(0,)]


@pytest.mark.integration
@pytest.mark.usefixtures("lambda_env")
def test_hostile_rows_are_rejected_and_the_project_stays_readable(
    api: TestClient, app_container: Container, cloud: Cloud, make_project: Callable[[str], ProjectKey]
) -> None:
    # Given an Excel "CSV UTF-8" file (byte-order mark) with a NUL in one row and a year-10000 time in another
    project = make_project("hostile")
    rows = [
        "Fine?,Yes.,2026-01-05T10:00:00Z,,",
        "Nul\x00here?,Yes.,2026-01-05T10:00:00Z,,",
        "Far future?,Yes.,9999-12-31T23:00:00-05:00,,",
    ]
    data = b"\xef\xbb\xbf" + _csv(rows)
    # When it is uploaded and the worker drains the queue
    created = api.post(_url(project), files={"file": ("excel.csv", data, "text/csv")}, headers=project.headers)
    _run_worker(cloud)
    job = api.get(_url(project, created.json()["id"]), headers=project.headers).json()
    listing = api.get(f"/query/v1/projects/{project.id}/threads/", headers=project.headers)
    # Then the job finished with the two bad rows rejected, and the thread listing still reads
    assert created.status_code == 202 and job["status"] == "done" and job["rows_done"] == 1
    assert [(r["row"], r["reason"].split(" ")[0]) for r in job["rejections"]] == [(3, "question,"), (4, "timestamp")]
    assert listing.status_code == 200 and [t["first_question"] for t in listing.json()["results"]] == ["Fine?"]


@pytest.mark.integration
@pytest.mark.usefixtures("lambda_env")
def test_a_failing_chunk_shows_no_driver_or_library_text(
    api: TestClient, app_container: Container, cloud: Cloud, make_project: Callable[[str], ProjectKey]
) -> None:
    # Given an accepted import whose stored file has since vanished from the bucket
    project = make_project("vanished")
    created = api.post(_url(project), files={"file": ("a.csv", _csv(GOOD_AND_BAD[:1]))}, headers=project.headers)
    job_id = UUID(created.json()["id"])
    key = app_container.imports.get_chunk(project.id, job_id, 0).object_key  # type: ignore[union-attr]
    app_container.import_files._s3.delete_object(Bucket=app_container.import_files._bucket, Key=key)
    # When the chunk is processed
    with pytest.raises(Exception) as raised:
        process_chunk(
            app_container.imports,
            app_container.alerts,
            app_container.import_files,
            app_container.classify_queue,
            (project.id, job_id, 0),
        )
    job = api.get(_url(project, str(job_id)), headers=project.headers).json()
    # Then the job says which chunk failed, without the storage library's own message
    assert "NoSuchKey" in type(raised.value).__name__ + str(raised.value)
    assert job["errors"] == ["chunk 0 (attempt 1): internal error; retrying"]
