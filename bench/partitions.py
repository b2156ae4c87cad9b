"""How one chunks partition per project scales with the number of projects (migration 0015).

    python -m bench.partitions --projects 10000

Creates projects through the real tenancy code (each gets its partition from the trigger), and at each
checkpoint prints: the time to create a project (its partition, with the primary key, document and HNSW
indexes, comes with it), the catalog's size, and the planning and execution time of the chat's retrieval
statement for one project, which partition pruning keeps from growing with the number of partitions.
Every project holds a few chunks so the search has rows to return.
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from bench.labelling_support import bench_database, percentile
from threadline.adapters.postgres.chat import _RETRIEVE_NEW
from threadline.bootstrap import Container
from threadline.domain import tenancy
from threadline.settings import Settings

DIM = 384


def _add_chunks(conn: psycopg.Connection[Any], project_id: uuid.UUID, rng: np.random.Generator, count: int) -> None:
    row = conn.execute(
        "INSERT INTO documents (project_id, title, content_type, content_hash, status)"
        " VALUES (%s, 'doc', 'text/plain', 'h', 'ready') RETURNING id",
        (project_id,),
    ).fetchone()
    assert row is not None
    vectors = rng.normal(size=(count, DIM)).astype(np.float32)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO chunks (document_id, project_id, ordinal, content, embedding) VALUES (%s, %s, %s, 'c', %s)",
            [(row[0], project_id, i, v) for i, v in enumerate(vectors)],
        )


def _plan_times(conn: psycopg.Connection[Any], project_id: uuid.UUID, vector: Any, runs: int) -> tuple[float, float]:
    """p50 planning and execution ms of the retrieval statement (EXPLAIN ANALYZE's own figures)."""
    planning, execution = [], []
    params = {"project_id": project_id, "vector": vector, "top_k": 6}
    for _ in range(runs):
        rows = conn.execute("EXPLAIN (ANALYZE, SUMMARY, FORMAT JSON) " + _RETRIEVE_NEW, params).fetchone()
        assert rows is not None
        plan = rows[0][0]
        planning.append(float(plan["Planning Time"]))
        execution.append(float(plan["Execution Time"]))
    return percentile(planning, 50), percentile(execution, 50)


def main(argv: list[str] | None = None) -> None:
    """Create projects up to --projects, printing the figures at each checkpoint."""
    parser = argparse.ArgumentParser(prog="python -m bench.partitions", description=__doc__)
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--chunks", type=int, default=5, help="chunks per project")
    parser.add_argument("--runs", type=int, default=50, help="timed retrievals per checkpoint")
    args = parser.parse_args(argv)
    checkpoints = sorted({c for c in (10, 100, 1000, 10_000, args.projects) if c <= args.projects})
    rng = np.random.default_rng(3)
    with bench_database() as url:
        container = Container(Settings(database_url=url))
        team = tenancy.create_team(container.tenancy, "bench")
        made: list[uuid.UUID] = []
        created_ms: list[float] = []
        print("projects  create p50/p95 (ms)  catalog: relations, MiB  retrieval: planning / execution p50 (ms)")
        with psycopg.connect(url, autocommit=True) as conn:
            register_vector(conn)
            for checkpoint in checkpoints:
                while len(made) < checkpoint:
                    started = time.perf_counter()
                    project = tenancy.create_project(container.tenancy, team.id, f"p{len(made)}")
                    created_ms.append((time.perf_counter() - started) * 1000)
                    _add_chunks(conn, project.id, rng, args.chunks)
                    made.append(project.id)
                relations, catalog = conn.execute(
                    "SELECT (SELECT count(*) FROM pg_class),"
                    " (pg_total_relation_size('pg_class') + pg_total_relation_size('pg_attribute')"
                    " + pg_total_relation_size('pg_index') + pg_total_relation_size('pg_inherits')) / 1048576.0"
                ).fetchone() or (0, 0.0)
                recent = created_ms[-min(len(created_ms), 200) :]
                question = rng.normal(size=DIM).astype(np.float32)
                planning, execution = _plan_times(conn, made[len(made) // 2], question, args.runs)
                print(
                    f"{checkpoint:>8,}  {percentile(recent, 50):8.1f} / {percentile(recent, 95):6.1f}"
                    f"       {relations:>9,}, {catalog:6.1f}        {planning:6.2f} / {execution:6.2f}",
                    flush=True,
                )
        container.close()


if __name__ == "__main__":
    main()
