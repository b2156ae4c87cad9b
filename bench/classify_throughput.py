"""(b) Classifier throughput through the real ClassifierFunction handler, against the raw embedding model.

Seeds --threads new threads (questions from bench/data/classification.jsonl), then measures in one run:
the raw model embedding the same questions in batches of --batch, and the handler consuming SQS-shaped
events of --batch records (events/sqs/classify_thread.json as the template): reading the threads,
embedding, scoring against cached prototypes, and writing the labels. Target: handler >= 70% of raw.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from bench.labelling_support import REPO_ROOT, bench_database, new_project
from threadline.bootstrap import get_container
from threadline.messages import ClassifyThread
from threadline.settings import get_settings

DATA = Path(__file__).resolve().parent / "data" / "classification.jsonl"


class _Context:
    function_name = "ClassifierFunction"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ClassifierFunction"
    aws_request_id = "bench"


def _questions(count: int) -> list[str]:
    base = [json.loads(line)["question"] for line in DATA.read_text().splitlines() if line.strip()]
    return [base[i % len(base)] if i < len(base) else f"{base[i % len(base)]} (ref {i})" for i in range(count)]


def _seed(url: str, project_id: uuid.UUID, questions: list[str]) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in questions]
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy("COPY threads (id, project_id, first_question, message_count) FROM STDIN") as copy_in:
            for thread_id, question in zip(ids, questions, strict=True):
                copy_in.write_row((thread_id, project_id, question, 1))
        conn.execute("ANALYZE threads")
    return ids


def _events(project_id: uuid.UUID, ids: list[uuid.UUID], batch: int) -> list[dict[str, Any]]:
    template = json.loads((REPO_ROOT / "events" / "sqs" / "classify_thread.json").read_text())["Records"][0]
    events = []
    for start in range(0, len(ids), batch):
        records = []
        for thread_id in ids[start : start + batch]:
            record = copy.deepcopy(template)
            record["messageId"] = str(uuid.uuid4())
            record["body"] = ClassifyThread(project_id=project_id, thread_id=thread_id).model_dump_json()
            records.append(record)
        events.append({"Records": records})
    return events


def main(argv: list[str] | None = None) -> None:
    """Print raw and handler threads/s and their ratio."""
    parser = argparse.ArgumentParser(prog="python -m bench.classify_throughput", description=__doc__)
    parser.add_argument("--threads", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=50, help="records per SQS event (template BatchSize: 50)")
    args = parser.parse_args(argv)
    from threadline.handlers.classify import lambda_handler

    with bench_database() as url:
        os.environ["DATABASE_URL"] = url
        os.environ["EMBEDDING_TOKENIZER_PATH"] = str(REPO_ROOT / "layers" / "model" / "tokenizer.json")
        get_settings.cache_clear()
        get_container.cache_clear()
        container = get_container()
        try:
            project_id = new_project(container, "throughput")
            questions = _questions(args.threads)
            ids = _seed(url, project_id, questions)
            warm_id = _seed(url, project_id, ["How do I warm up?"])
            # Warm-up outside the timing: model session, prototypes cache, connection pool.
            lambda_handler(_events(project_id, warm_id, 1)[0], _Context())  # type: ignore[arg-type]
            # Raw and handler batches alternate, so both see the same machine load (the host is shared).
            events = _events(project_id, ids, args.batch)
            batches = [questions[i : i + args.batch] for i in range(0, len(questions), args.batch)]
            raw_s = handler_s = 0.0
            failures = 0
            for texts, event in zip(batches, events, strict=True):
                started = time.perf_counter()
                container.embedder.embed(texts)
                raw_s += time.perf_counter() - started
                started = time.perf_counter()
                failures += len(lambda_handler(event, _Context())["batchItemFailures"])  # type: ignore[arg-type]
                handler_s += time.perf_counter() - started
            raw, handler = len(questions) / raw_s, len(ids) / handler_s
            with psycopg.connect(url) as conn:
                labelled = conn.execute(
                    "SELECT count(*) FROM threads WHERE project_id = %s AND label_source = 'auto'", (project_id,)
                ).fetchone()
            print(f"threads: {len(ids):,} in SQS events of {args.batch}; failures: {failures}")
            print(f"labelled: {labelled[0] if labelled else 0:,}")
            print(f"raw embedding model : {raw:8.1f} threads/s")
            print(f"ClassifierFunction  : {handler:8.1f} threads/s")
            print(f"ratio               : {handler / raw:8.1%}   (target >= 70%)")
        finally:
            container.close()
            get_container.cache_clear()
            get_settings.cache_clear()


if __name__ == "__main__":
    main()
