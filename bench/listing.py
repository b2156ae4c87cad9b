"""(a) The thread listing on a big project: a page of 50 by keyset versus by OFFSET.

Seeds one project with --threads threads by COPY (plus 10% in a neighbouring project), then times,
through the real repository SQL: the first page, a page --deep threads down by cursor, the first page
filtered by category, a filtered page deep down, the unlabelled filter, and the deep page by OFFSET.
Target: p95 <= 10 ms for the keyset pages.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg

from bench.labelling_support import bench_database, bench_settings, new_project, percentile
from threadline.adapters.postgres.labels import listing_sql
from threadline.bootstrap import Container
from threadline.domain import labels
from threadline.domain.labels import ThreadQuery
from threadline.domain.pagination import Cursor, PageRequest

PAGE = 50
T0 = datetime(2024, 1, 1, tzinfo=UTC)
_QUESTIONS = ["How do I export my data?", "The upload fails with a timeout", "Can I get a refund?", "Are you hiring?"]


def _seed(url: str, project_id: uuid.UUID, other_id: uuid.UUID, category_ids: list[uuid.UUID], count: int) -> float:
    """COPY `count` threads into the project (a third unlabelled) and a tenth as many into another; seconds taken."""
    rng = random.Random(7)
    started = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        columns = (
            "id, project_id, first_question, message_count, created_at, updated_at,"
            " category_id, label_source, label_confidence, label_model, labelled_at"
        )
        with cur.copy(f"COPY threads ({columns}) FROM STDIN") as copy:
            for i in range(count + count // 10):
                project = project_id if i < count else other_id
                created = T0 + timedelta(seconds=i * 2 + rng.random())
                if i % 3 == 0:
                    label: tuple[object, ...] = (None, None, None, None, None)
                else:
                    source = "user" if i % 50 == 1 else "auto"
                    label = (category_ids[i % len(category_ids)], source, 0.9, "embedding", created)
                row = (uuid.uuid4(), project, _QUESTIONS[i % 4], 1 + i % 7, created, created, *label)
                copy.write_row(row)
        conn.execute("ANALYZE threads")
    return time.perf_counter() - started


def _time(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    fn()  # warm: plan cache and buffers
    samples: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return percentile(samples, 50), percentile(samples, 95)


def _cursor_at(url: str, project_id: uuid.UUID, depth: int, category_id: uuid.UUID | None = None) -> Cursor:
    """The cursor a client holds after paging `depth` threads down (found once, by OFFSET, outside the timing)."""
    where = " AND category_id = %(c)s" if category_id else ""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT created_at, id FROM threads WHERE project_id = %(p)s"
            + where
            + " ORDER BY created_at DESC, id DESC OFFSET %(o)s LIMIT 1",
            {"p": project_id, "c": category_id, "o": depth - 1},
        ).fetchone()
    assert row is not None, "the project has fewer threads than --deep"
    return Cursor.after(row[0], row[1])


def _plan(url: str, project_id: uuid.UUID, query: ThreadQuery) -> str:
    sql, params = listing_sql(query)
    with psycopg.connect(url) as conn:
        rows = conn.execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql, {**params, "project_id": project_id}).fetchall()  # type: ignore[operator]
    text = "\n".join(r[0] for r in rows)
    index = next((w for w in text.replace("(", " ").split() if w.startswith("threads_")), "no index")
    return f"{index}{', sorts' if 'Sort' in text else ''}"


def main(argv: list[str] | None = None) -> None:
    """Seed, then print p50/p95 per kind of page."""
    parser = argparse.ArgumentParser(prog="python -m bench.listing", description=__doc__)
    parser.add_argument("--threads", type=int, default=200_000, help="threads in the project (issue: 1000000)")
    parser.add_argument("--deep", type=int, default=None, help="cursor depth (default: half of --threads)")
    parser.add_argument("--runs", type=int, default=200, help="timed runs per keyset case")
    parser.add_argument("--offset-runs", type=int, default=10, help="timed runs of the OFFSET page")
    args = parser.parse_args(argv)
    deep = args.deep or args.threads // 2
    with bench_database() as url:
        container = Container(bench_settings(url))
        try:
            project_id = new_project(container, "listing")
            other_id = new_project(container, "neighbour")
            category_ids = [c.id for c in container.categories.list_categories(project_id)]
            seconds = _seed(url, project_id, other_id, category_ids, args.threads)
            print(f"seeded {args.threads:,} threads (+{args.threads // 10:,} elsewhere) by COPY in {seconds:.1f} s")
            repo = container.labels
            category = category_ids[0]
            cases = {
                "first page": ThreadQuery(PageRequest(PAGE)),
                f"cursor {deep:,} deep": ThreadQuery(PageRequest(PAGE, _cursor_at(url, project_id, deep))),
                "category, first page": ThreadQuery(PageRequest(PAGE), category_id=category),
                f"category, cursor {deep // 3:,} deep": ThreadQuery(
                    PageRequest(PAGE, _cursor_at(url, project_id, deep // 3, category)), category_id=category
                ),
                "unlabelled, first page": ThreadQuery(PageRequest(PAGE), unlabelled=True),
                "label_source=user, first page": ThreadQuery(PageRequest(PAGE), label_source="user"),
            }
            print(f"page of {PAGE}, {args.runs} runs each (ms)        p50     p95   plan")
            for name, query in cases.items():
                p50, p95 = _time(lambda q=query: labels.list_threads(repo, project_id, q), args.runs)  # type: ignore[misc]
                print(f"  keyset {name:<34} {p50:7.2f} {p95:7.2f}   {_plan(url, project_id, query)}")
            sql, params = listing_sql(ThreadQuery(PageRequest(PAGE)))
            offset_sql = sql.replace("LIMIT %(limit)s", "LIMIT %(limit)s OFFSET %(offset)s")
            with psycopg.connect(url) as conn:
                run = lambda: conn.execute(offset_sql, {**params, "project_id": project_id, "offset": deep}).fetchall()  # type: ignore[operator]  # noqa: E731
                p50, p95 = _time(run, args.offset_runs)
            print(f"  OFFSET {deep:<34,} {p50:7.2f} {p95:7.2f}   ({args.offset_runs} runs)")
            print("target: keyset p95 <= 10 ms")
        finally:
            container.close()


if __name__ == "__main__":
    main()
