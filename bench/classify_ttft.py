"""(c) The chat's time to first token with classification enabled versus disabled.

Two copies of the app run on uvicorn in their own processes against the same database and the same
OpenAI-compatible stub: one sends a ClassifyQueue message (moto server, in this process) for every new
thread, the other has CLASSIFICATION_ENABLED=false. Requests alternate between them, one at a time, each
starting a new thread (so every enabled request enqueues), and the client measures from sending the
request to the first `token` event. Target: enabled/disabled <= 1.05. The classifier itself runs
elsewhere in production (its own Lambda), so the queue is drained through ClassifierFunction only
after the timing, to show every message arrived.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
import uuid

import boto3
import httpx
from httpx_sse import connect_sse

from bench.chat import _serve_llm, _wait
from bench.labelling_support import REPO_ROOT, bench_database, bench_settings, percentile
from threadline.bootstrap import Container
from threadline.domain import tenancy
from threadline.settings import Settings

QUESTIONS = [
    "How do I reset my password?",
    "The upload fails with a timeout",
    "Can I get a refund for last month?",
    "Is there an API for exporting threads?",
    "Why does the widget not load on Safari?",
]


def _serve_app(url: str, llm_url: str, port: int, queue_url: str, endpoint: str, enabled: bool) -> None:
    import uvicorn

    from threadline.api.app import create_app

    settings = Settings(
        database_url=url,
        openai_base_url=llm_url,
        openai_api_key="bench",
        llm_model="bench",
        embedding_tokenizer_path=REPO_ROOT / "layers" / "model" / "tokenizer.json",
        aws_endpoint_url=endpoint,
        classify_queue_url=queue_url,
        classification_enabled=enabled,
    )
    container = Container(settings)
    container.query_embedder.embed(["warm up"])
    uvicorn.run(create_app(container), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _serve_moto(port: int) -> None:
    from threadline.local.moto_server import start_moto

    start_moto(port)
    while True:
        time.sleep(3600)


def _ttft(client: httpx.Client, project: uuid.UUID, key: str, question: str) -> float:
    started = time.perf_counter()
    with connect_sse(
        client,
        "POST",
        f"/query/v1/projects/{project}/chat/stream/",
        json={"query": question},
        headers={"X-API-KEY": key},
    ) as source:
        first: float | None = None
        for event in source.iter_sse():
            if event.event == "token" and first is None:
                first = (time.perf_counter() - started) * 1000
            if event.event == "error":
                raise RuntimeError(event.data)
    if first is None:
        raise RuntimeError("no token event")
    return first


def main(argv: list[str] | None = None) -> None:
    """Print TTFT p50/p95/mean per mode and the enabled/disabled ratio."""
    parser = argparse.ArgumentParser(prog="python -m bench.classify_ttft", description=__doc__)
    parser.add_argument("--requests", type=int, default=100, help="timed requests per mode")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--gap-ms", type=float, default=0.0, help="pause between requests (0: back to back)")
    args = parser.parse_args(argv)
    from threadline.local.moto_server import free_port

    # moto accepts any credentials, but the apps' boto3 clients must find some (spawned processes inherit these).
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    # moto runs in its own process, so serving SendMessage never competes with the client's timing.
    context = multiprocessing.get_context("spawn")
    moto_port = free_port()
    moto = context.Process(target=_serve_moto, args=(moto_port,), daemon=True)
    moto.start()
    endpoint = f"http://127.0.0.1:{moto_port}"
    _wait(f"{endpoint}/moto-api/")
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="ClassifyQueue")["QueueUrl"]
    with bench_database() as url:
        container = Container(bench_settings(url))
        team = tenancy.create_team(container.tenancy, "bench")
        project = tenancy.create_project(container.tenancy, team.id, "ttft")
        key = tenancy.issue_api_key(container.tenancy, project.id).key
        llm_port, on_port, off_port = free_port(), free_port(), free_port()
        llm_url = f"http://127.0.0.1:{llm_port}/v1"
        processes = [
            context.Process(target=_serve_llm, args=(llm_port,), daemon=True),
            context.Process(target=_serve_app, args=(url, llm_url, on_port, queue_url, endpoint, True), daemon=True),
            context.Process(target=_serve_app, args=(url, llm_url, off_port, queue_url, endpoint, False), daemon=True),
        ]
        for process in processes:
            process.start()
        times: dict[bool, list[float]] = {True: [], False: []}
        try:
            for port in (on_port, off_port):
                _wait(f"http://127.0.0.1:{port}/health")
            with (
                httpx.Client(base_url=f"http://127.0.0.1:{on_port}", timeout=30) as on,
                httpx.Client(base_url=f"http://127.0.0.1:{off_port}", timeout=30) as off,
            ):
                for i in range(args.warmup + args.requests):
                    question = QUESTIONS[i % len(QUESTIONS)]
                    # Alternate which mode goes first, so neither always follows the other's background send.
                    order = [(True, on), (False, off)] if i % 2 == 0 else [(False, off), (True, on)]
                    for enabled, client in order:
                        value = _ttft(client, project.id, key, question)
                        if i >= args.warmup:
                            times[enabled].append(value)
                        time.sleep(args.gap_ms / 1000)
            time.sleep(1.0)
            queued = int(
                sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])[
                    "Attributes"
                ]["ApproximateNumberOfMessages"]
            )
        finally:
            for process in processes:
                process.terminate()
                process.join(10)
            container.close()
            moto.terminate()
            moto.join(10)
    print(f"time to first token, {args.requests} requests per mode, each a new thread (ms):")
    for enabled in (False, True):
        values = times[enabled]
        name = "classification enabled " if enabled else "classification disabled"
        print(
            f"  {name}: p50 {percentile(values, 50):6.1f}  p95 {percentile(values, 95):6.1f}"
            f"  mean {statistics.fmean(values):6.1f}"
        )
    ratio50 = percentile(times[True], 50) / percentile(times[False], 50)
    ratio_mean = statistics.fmean(times[True]) / statistics.fmean(times[False])
    print(f"  ratio enabled/disabled: p50 {ratio50:.3f}, mean {ratio_mean:.3f}   (target <= 1.05)")
    print(f"ClassifyQueue messages sent by the enabled app: {queued} (expected {args.warmup + args.requests})")


if __name__ == "__main__":
    main()
