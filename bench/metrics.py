"""Bulk import throughput, the cost of measuring interactions, and the chat's TTFT with metrics on and off.

    python -m bench.metrics --rows 100000            # the issue's scale
    python -m bench.metrics --rows 20000 --measure 500 --ttft 100

Starts an embedded Postgres and moto (S3 + SQS), uploads a generated CSV through the same domain
call the API makes, then drains the ImportQueue through the real ImportFunction handler in batches
as Lambda's poller would, and prints rows/s. Then stores `--measure` answered interactions and
drains the MetricsQueue through MetricsFunction, printing interactions/s: the work the chat hands
off. Finally it streams 2 x `--ttft` questions through the live app on uvicorn (against a real HTTP
server speaking the OpenAI streaming protocol), switching the chat's metrics message on or off at
random per question, and prints TTFT ratios on/off grouped by the question's own switch and by the
previous question's (whose background enqueue could overlap it); target <= 1.02.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import psycopg

from threadline import bootstrap
from threadline import settings as settings_module
from threadline.adapters.postgres.migrate import migrate
from threadline.bootstrap import Container
from threadline.domain import imports, tenancy

REPO = Path(__file__).resolve().parents[1]
WORDS = "account billing export password login invoice team project webhook token error timeout refund".split()


class _Context:
    function_name = "bench"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 120_000


def generate_csv(rows: int, seed: int = 1) -> bytes:
    """A file of past interactions: some grouped in threads, a few malformed rows, some very long answers."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["question", "answer", "timestamp", "latency_ms", "thread"])
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(rows):
        question = " ".join(rng.choices(WORDS, k=rng.randint(4, 14))) + "?"
        answer = " ".join(rng.choices(WORDS, k=max(1, int(rng.gauss(60, 20)))))
        if rng.random() < 0.01:
            answer = answer * 10
        at = (start + timedelta(seconds=i * 17)).isoformat()
        latency = "" if rng.random() < 0.1 else str(int(rng.lognormvariate(7, 0.5)))
        thread = f"t{i // 3}" if rng.random() < 0.3 else ""
        if rng.random() < 0.002:
            at = "not a date"
        writer.writerow([question, answer, at, latency, thread])
    return out.getvalue().encode()


def _drain(
    queue_url: str, handler: Callable[[dict[str, Any], Any], dict[str, Any]], sqs: Any, batch: int
) -> tuple[int, float]:
    """Deliver a queue to a handler as Lambda's poller does; returns (records, seconds inside the handler)."""
    handled, in_handler = 0, 0.0
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=batch).get("Messages", [])
        if not messages:
            return handled, in_handler
        event = {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench",
                    "awsRegion": "us-east-1",
                }
                for m in messages
            ]
        }
        started = time.perf_counter()
        # The handlers' CloudWatch EMF lines go to Lambda's log, not into the printed figures.
        with contextlib.redirect_stdout(io.StringIO()):
            failures = handler(event, _Context())["batchItemFailures"]
        in_handler += time.perf_counter() - started
        if failures:
            raise RuntimeError(f"records failed: {failures}")
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
        handled += len(messages)


def _environment(pg_url: str, endpoint: str, chunk_rows: int) -> tuple[str, str, str]:
    suffix = uuid.uuid4().hex[:8]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=f"bench-imports-{suffix}")
    import_url = sqs.create_queue(QueueName=f"bench-import-{suffix}")["QueueUrl"]
    metrics_url = sqs.create_queue(QueueName=f"bench-metrics-{suffix}")["QueueUrl"]
    os.environ.update(
        {
            "DATABASE_URL": pg_url,
            "AWS_ENDPOINT_URL": endpoint,
            "IMPORT_BUCKET": f"bench-imports-{suffix}",
            "IMPORT_QUEUE_URL": import_url,
            "METRICS_QUEUE_URL": metrics_url,
            "IMPORT_CHUNK_ROWS": str(chunk_rows),
        }
    )
    settings_module.get_settings.cache_clear()
    bootstrap.get_container.cache_clear()
    return import_url, metrics_url, f"bench-imports-{suffix}"


def bench_import(rows: int) -> uuid.UUID:
    """Upload and import a generated file; prints rows/s for each stage."""
    from threadline.handlers.imports import lambda_handler

    container = bootstrap.get_container()
    team = tenancy.create_team(container.tenancy, "bench")
    project = tenancy.create_project(container.tenancy, team.id, "bench import")
    data = generate_csv(rows)
    print(f"file: {rows} rows, {len(data) / 1e6:.1f} MB, chunks of {container.settings.import_chunk_rows} rows")
    started = time.perf_counter()
    job, _ = imports.start_import(
        container.imports,
        container.import_files,
        container.import_queue,
        project.id,
        data,
        container.settings.import_chunk_rows,
    )
    uploaded = time.perf_counter()
    sqs = boto3.client("sqs", endpoint_url=container.settings.aws_endpoint_url, region_name="us-east-1")
    chunks, in_handler = _drain(container.settings.import_queue_url, lambda_handler, sqs, batch=2)
    done = time.perf_counter()
    final = container.imports.get_job(project.id, job.id)
    print(f"upload (check, plan, S3, enqueue): {uploaded - started:.2f} s  ({rows / (uploaded - started):,.0f} rows/s)")
    print(f"background import of {chunks} chunks: {done - uploaded:.2f} s  ({rows / (done - uploaded):,.0f} rows/s)")
    print(f"  of which inside ImportFunction: {in_handler:.2f} s  ({rows / in_handler:,.0f} rows/s per worker)")
    print(f"total: {done - started:.2f} s  -> {rows / (done - started):,.0f} rows/s end to end")
    print(
        f"job {final.status}: {final.rows_done} rows done, {final.rows_rejected} rejected, {len(final.errors)} errors"
    )
    with container.db.transaction() as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM messages WHERE project_id = %(p)s) AS messages,"
            " (SELECT count(*) FROM threads WHERE project_id = %(p)s) AS threads,"
            " (SELECT count(*) FROM interaction_metrics WHERE project_id = %(p)s) AS metrics,"
            " (SELECT count(*) FROM alerts WHERE project_id = %(p)s) AS alerts",
            {"p": project.id},
        ).fetchone()
    print(f"stored: {dict(row or {})}")
    return project.id


def bench_measure(count: int) -> None:
    """Store answered interactions, enqueue them as the chat does, and time MetricsFunction draining them."""
    from threadline.handlers.metrics import lambda_handler

    container = bootstrap.get_container()
    team = tenancy.create_team(container.tenancy, "bench measure")
    project = tenancy.create_project(container.tenancy, team.id, "bench measure")
    with psycopg.connect(container.settings.database_url) as conn:
        thread = conn.execute("INSERT INTO threads (project_id) VALUES (%s) RETURNING id", (project.id,)).fetchone()
        assert thread is not None
        ids = [
            r[0]
            for r in conn.execute(
                "INSERT INTO messages (thread_id, project_id, question, answer, status, latency_ms, first_token_ms,"
                " prompt_tokens, completion_tokens, retrieval_score)"
                " SELECT %s, %s, 'q?', repeat('a', 50 + (random() * 900)::int), 'complete',"
                " 500 + (random() * 3000)::int, 100 + (random() * 400)::int, 800, 200, random()"
                " FROM generate_series(1, %s) RETURNING id",
                (thread[0], project.id, count),
            )
        ]
    sqs = boto3.client("sqs", endpoint_url=container.settings.aws_endpoint_url, region_name="us-east-1")
    url = container.settings.metrics_queue_url
    enqueue_started = time.perf_counter()
    for start in range(0, len(ids), 10):
        body = {"kind": "measure_interaction", "project_id": str(project.id), "thread_id": str(thread[0])}
        entries = [
            {"Id": str(i), "MessageBody": json.dumps({**body, "message_id": str(m)})}
            for i, m in enumerate(ids[start : start + 10])
        ]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]
    enqueued = time.perf_counter()
    handled, in_handler = _drain(url, lambda_handler, sqs, batch=10)
    done = time.perf_counter()
    stats = container.alerts.stats(project.id)
    print(
        f"measured {handled} interactions through MetricsFunction in {done - enqueued:.2f} s"
        f" ({handled / (done - enqueued):,.0f} interactions/s, {1000 * (done - enqueued) / handled:.2f} ms each);"
        f" enqueue {1000 * (enqueued - enqueue_started) / len(ids):.2f} ms per interaction (batched by 10)"
    )
    print(f"  of which inside MetricsFunction: {1000 * in_handler / handled:.2f} ms per interaction")
    print(f"answer_length over {stats['answer_length'].n} interactions: mean {stats['answer_length'].mean:.1f}")


def _first_token_s(client: httpx.Client, url: str, headers: dict[str, str], question: str) -> float:
    """Seconds from sending a streamed question to its first `token` event; the stream is read to the end."""
    started = time.perf_counter()
    first: float | None = None
    with client.stream("POST", url, json={"query": question}, headers=headers) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if first is None and line == "event: token":
                first = time.perf_counter() - started
    if first is None:
        raise RuntimeError("the stream had no token event")
    return first


class _SwitchableEvents:
    """The chat's real SQS producer, with the metrics message switchable per request (the A/B knob)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.metrics_on = True

    def thread_started(self, project_id: uuid.UUID, thread_id: uuid.UUID, first_question: str) -> None:
        self.inner.thread_started(project_id, thread_id, first_question)

    def answer_completed(self, project_id: uuid.UUID, thread_id: uuid.UUID, message_id: uuid.UUID) -> None:
        if self.metrics_on:
            self.inner.answer_completed(project_id, thread_id, message_id)

    def flush(self, timeout_s: float) -> None:
        self.inner.flush(timeout_s)


def _seed_documents(url: str, project_id: uuid.UUID, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=url, timeout=60) as setup:
        for i, topic in enumerate(WORDS):
            text = f"# {topic}\n\n" + f"How to manage your {topic}: open settings and choose {topic}. " * 20
            body = {"title": f"doc {i}", "text": text}
            setup.post(f"/query/v1/projects/{project_id}/documents/", json=body, headers=headers).raise_for_status()


def bench_ttft(questions: int, settle: bool = False) -> None:
    """Time to first token of the streamed chat with the metrics message on and off, on one live server."""
    from threadline.api.app import create_app
    from threadline.handlers.metrics import lambda_handler
    from threadline.local.openai_stub import OpenAIStub, Reply
    from threadline.local.serving import BackgroundServer
    from threadline.settings import Settings

    stub = OpenAIStub(default=Reply(text="Open Settings, then Export, and pick CSV [1]. " * 4, delay_s=0.002))
    with BackgroundServer(stub.app) as llm:
        stub.base_url = f"{llm.url}/v1"
        base = Settings().model_copy(
            # No cloud here: the seeded documents are ingested within their upload requests.
            update={
                "openai_base_url": stub.base_url,
                "openai_api_key": "sk-bench",
                "llm_model": "stub",
                "ingest_inline": True,
            }
        )
        container = Container(base)
        events = _SwitchableEvents(container.chat_events)
        # Before the chat service is first built, so it holds the switchable producer.
        container.__dict__["chat_events"] = events
        team = tenancy.create_team(container.tenancy, "bench ttft")
        project = tenancy.create_project(container.tenancy, team.id, "bench ttft")
        headers = {"X-API-KEY": tenancy.issue_api_key(container.tenancy, project.id).key}
        # Keyed by (this question's own switch, the previous question's switch): an answer enqueues only
        # after its last token, so the only way it could touch a TTFT is by overlapping the next question.
        timings: dict[tuple[bool, bool], list[float]] = {}
        rng = random.Random(4)
        with BackgroundServer(create_app(container)) as api, httpx.Client(base_url=api.url, timeout=60) as client:
            _seed_documents(api.url, project.id, headers)
            url = f"/query/v1/projects/{project.id}/chat/stream/"
            previous = False
            for i in range(2 * questions + 10):
                events.metrics_on = rng.random() < 0.5
                ttft = _first_token_s(client, url, headers, f"How do I change my {rng.choice(WORDS)}?")
                if i >= 10:
                    timings.setdefault((events.metrics_on, previous), []).append(ttft)
                previous = events.metrics_on
                if settle:
                    # Let the previous answer's enqueue finish first: isolates its overlap with the next question.
                    events.inner.flush()
            events.inner.flush()
        container.close()
    sqs = boto3.client("sqs", endpoint_url=base.aws_endpoint_url, region_name="us-east-1")
    measured, _ = _drain(base.metrics_queue_url, lambda_handler, sqs, batch=10)
    own = {m: [t for (o, _), ts in timings.items() if o == m for t in ts] for m in (True, False)}
    after = {m: [t for (_, p), ts in timings.items() if p == m for t in ts] for m in (True, False)}
    print(f"TTFT of {sum(map(len, timings.values()))} streamed questions, metrics message switched at random:")
    for label, groups in (("own answer", own), ("previous answer", after)):
        on, off = (statistics.median(groups[k]) * 1000 for k in (True, False))
        mean_on, mean_off = (statistics.fmean(groups[k]) * 1000 for k in (True, False))
        print(
            f"  by the {label}'s switch (n={len(groups[True])}/{len(groups[False])}): median {on:.2f} vs {off:.2f} ms"
            f" -> ratio {on / off:.3f} (target <= 1.02); mean {mean_on:.2f} vs {mean_off:.2f} ms"
            f" -> {mean_on / mean_off:.3f}"
        )
    print(f"  MetricsFunction then measured {measured} interactions from the queue (the 'on' answers)")


def _start_moto_process() -> tuple[subprocess.Popen[bytes], str]:
    """moto in a process of its own: like real AWS, its work does not compete with the app for the GIL."""
    from threadline.local.moto_server import free_port

    port = free_port()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        with contextlib.suppress(httpx.TransportError):
            httpx.get(f"{url}/moto-api/", timeout=1)
            return process, url
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("moto did not start")


def main(argv: list[str] | None = None) -> None:
    """Run the import and measuring benchmarks at the sizes given."""
    parser = argparse.ArgumentParser(prog="python -m bench.metrics", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows in the imported CSV (the issue: 100000)")
    parser.add_argument("--chunk-rows", type=int, default=1000, help="rows per ImportQueue message")
    parser.add_argument("--measure", type=int, default=500, help="interactions measured through MetricsFunction")
    parser.add_argument("--ttft", type=int, default=100, help="streamed questions per side for the TTFT comparison")
    parser.add_argument("--settle", action="store_true", help="wait for each answer's enqueue before the next question")
    args = parser.parse_args(argv)

    from threadline.local.postgres import embedded_server
    from threadline.observability import logger

    # Per-record logs and the moto server's access log would drown the figures.
    logger.setLevel("WARNING")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="tlbm") as tmp, embedded_server(Path(tmp) / "pg") as pg_url:
        moto_server, endpoint = _start_moto_process()
        try:
            migrate(pg_url, REPO / "infra" / "db" / "migrations")
            _environment(pg_url, endpoint, args.chunk_rows)
            bench_import(args.rows)
            if args.measure:
                bench_measure(args.measure)
            if args.ttft:
                bench_ttft(args.ttft, args.settle)
        finally:
            bootstrap.get_container().close()
            moto_server.terminate()
            moto_server.wait(timeout=10)


if __name__ == "__main__":
    main()
