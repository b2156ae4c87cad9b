"""Search latency by project size, the layout before and after migration 0021 (or 0022), in one run.

    python -m bench.search_sizes                          # 500, 2,000, 5,000 and 10,000 chunks a project
    python -m bench.search_sizes --before pending --sizes 500 2000
    python -m bench.search_sizes --sizes 1000 3000 --queries 100

Most projects are small: a hundred pages make a few thousand chunks. On a partition that small the planner
reads every chunk and sorts them exactly rather than walking the HNSW graph, and an exact scan reads every
embedding. Before migration 0021 an embedding (384 floats, 1,544 bytes) was stored out of line in the
partition's TOAST table whenever the row passed ~2 kB, which a chunk with its full-text columns always does,
so the scan fetched every embedding through the TOAST index. Migration 0021 keeps it in the row (STORAGE MAIN).
Before migration 0022 the full-text GIN index kept new chunks' lexemes in its pending list, which every hybrid
search reads in full until a vacuum, and autovacuum leaves a partition under ~1,000 inserts unvacuumed.

For each size, the same corpus goes into --projects-per-arm projects of each arm: "before" and "after" (as
the migrations leave it). `--before toast` (the default): the before arm's embedding column is set back to
EXTERNAL and the partition rewritten, the layout before 0021. `--before pending`: the before arm's GIN index
takes fastupdate back before its chunks are loaded, as before 0022. Nothing is vacuumed (autovacuum would not,
under its insert threshold); every partition is analysed, as autoanalyze does after 50 rows and 10%. Questions
alternate between the arms, so both see the same machine. Printed per size and arm: project-wide search (the
chat's new-thread statement) and a thread scoped to one document, vector-only and hybrid (the default), p50 /
p95 ms, and the plan Postgres chose (graph or exact sort); then the partitions' heap and TOAST sizes. The
corpus is bench.chat's synthetic support documentation (real embeddings of its unique passages, blends for the
rest), questions embedded one at a time as the chat does.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from bench.chat import ROOT, _derive, _embed_corpus, _topics, chunk_copy
from bench.labelling_support import bench_database, percentile
from threadline.adapters.postgres.chat import _SEARCH_SETTINGS, _STATEMENTS, CANDIDATES_PER_PASSAGE
from threadline.bootstrap import Container
from threadline.domain import tenancy
from threadline.settings import Settings

ARMS = ("before", "after")
CHUNKS_PER_DOCUMENT = 20
TOP_K = 6


def _partition(project_id: uuid.UUID) -> str:
    return "chunks_" + project_id.hex


def _load(
    conn: psycopg.Connection[Any],
    project_id: uuid.UUID,
    size: int,
    texts: Sequence[str],
    vectors: np.ndarray[Any, Any],
    rng: np.random.Generator,
) -> None:
    """`size` chunks in documents of CHUNKS_PER_DOCUMENT, loaded with COPY (generated columns computed)."""
    documents = [uuid.uuid4() for _ in range(max(1, size // CHUNKS_PER_DOCUMENT))]
    with (
        conn.cursor() as cur,
        cur.copy("COPY documents (id, project_id, title, content_type, content_hash, status) FROM STDIN") as copy,
    ):
        for n, doc in enumerate(documents):
            copy.write_row((doc, project_id, f"Guide {n}", "text/markdown", f"{project_id}-{n}", "ready"))
    first = rng.integers(0, len(texts), size=size)
    second = rng.integers(0, len(texts), size=size)
    derived = _derive(vectors, first, second, rng)
    with chunk_copy(conn) as copy:
        for i in range(size):
            text = f"{texts[first[i]]} {texts[second[i]].split('. ')[0]}."
            copy.write_row((documents[i % len(documents)], project_id, i, "Guide", text, derived[i]))


def _as_before_0021(conn: psycopg.Connection[Any], project_id: uuid.UUID) -> None:
    """The partition's embeddings back out of line, as every partition stored them before migration 0021."""
    table = _partition(project_id)
    conn.execute(f"ALTER TABLE {table} ALTER COLUMN embedding SET STORAGE EXTERNAL")
    conn.execute(f"VACUUM FULL {table}")


def _as_before_0022(conn: psycopg.Connection[Any], project_id: uuid.UUID) -> None:
    """The partition's full-text index with a pending list again (fastupdate on), as before migration 0022."""
    row = conn.execute(
        "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid"
        " JOIN pg_am a ON a.oid = i.relam WHERE t.relname = %s AND a.amname = 'gin'",
        (_partition(project_id),),
    ).fetchone()
    assert row is not None
    conn.execute(f"ALTER INDEX {row[0]} SET (fastupdate = on)")


# What the before arm undoes, and whether before or after its chunks are loaded.
BEFORE = {"toast": (_as_before_0021, "after loading"), "pending": (_as_before_0022, "before loading")}


def _plan(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> str:
    """ "graph" if the search walked the partition's HNSW index, else "exact" (a scoped thread's statement holds
    both branches, and a one-time filter skips one, so this reads which node ran, not which is planned)."""
    row = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).fetchone()
    assert row is not None
    nodes, walked = [row[0][0]["Plan"]], False
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", []))
        walked |= "embedding_idx" in str(node.get("Index Name", "")) and node.get("Actual Loops", 0) > 0
    return "graph" if walked else "exact"


def _build(
    conn: psycopg.Connection[Any],
    container: Container,
    sizes: Sequence[int],
    per_arm: int,
    texts: Sequence[str],
    vectors: np.ndarray[Any, Any],
    before: str,
) -> dict[tuple[int, str], list[uuid.UUID]]:
    """Every (size, arm)'s projects, created through the tenancy code (the trigger makes their partitions)."""
    team = tenancy.create_team(container.tenancy, "bench")
    numbers = np.random.default_rng(7)
    projects: dict[tuple[int, str], list[uuid.UUID]] = {}
    started = time.perf_counter()
    for size in sizes:
        for arm in ARMS:
            for n in range(per_arm):
                project = tenancy.create_project(container.tenancy, team.id, f"{arm} {size} {n}")
                undo, when = BEFORE[before]
                if arm == "before" and when == "before loading":
                    undo(conn, project.id)
                with conn.transaction():
                    _load(conn, project.id, size, texts, vectors, numbers)
                if arm == "before" and when == "after loading":
                    undo(conn, project.id)
                projects.setdefault((size, arm), []).append(project.id)
    # Statistics, as autoanalyze keeps them; no vacuum, which autovacuum runs on a partition only after 1,000
    # inserts plus a fifth of its rows.
    conn.execute("ANALYZE chunks")
    conn.execute("ANALYZE documents")
    took = time.perf_counter() - started
    print(f"loaded {sum(sizes) * len(ARMS) * per_arm:,} chunks in {took:.0f} s", flush=True)
    return projects


def _scoped_thread(conn: psycopg.Connection[Any], project_id: uuid.UUID) -> uuid.UUID:
    """A thread of the project scoped to one of its documents."""
    row = conn.execute(
        "INSERT INTO threads (project_id, document_ids) SELECT %(p)s, ARRAY[id] FROM documents"
        " WHERE project_id = %(p)s ORDER BY random() LIMIT 1 RETURNING id",
        {"p": project_id},
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def _time(
    conn: psycopg.Connection[Any],
    sql: str,
    arms: dict[str, list[uuid.UUID]],
    scoped: dict[uuid.UUID, uuid.UUID],
    questions: Sequence[tuple[str, Any]],
    ef_search: int,
) -> dict[str, tuple[list[float], set[str]]]:
    """Each arm's search times (ms) and plans, the arms alternating question by question."""
    out: dict[str, tuple[list[float], set[str]]] = {arm: ([], set()) for arm in arms}
    for i, (question, vector) in enumerate(questions):
        for arm in list(arms) if i % 2 == 0 else list(reversed(arms)):
            ids = arms[arm]
            pid = ids[i % len(ids)]
            params = {
                "vector": np.asarray(vector, dtype=np.float32),
                "project_id": pid,
                "thread_id": scoped[pid],
                "top_k": TOP_K,
                "candidates": TOP_K * CANDIDATES_PER_PASSAGE,
                "query": question,
                "ef_search": str(ef_search),
            }
            took, plans = out[arm]
            with conn.transaction():
                conn.execute(_SEARCH_SETTINGS, params)
                if i < len(ids):
                    plans.add(_plan(conn, sql, params))
                began = time.perf_counter()
                conn.execute(sql, params).fetchall()
                took.append((time.perf_counter() - began) * 1000)
    # The first tenth of each arm warms its caches.
    return {arm: (took[len(took) // 10 :], plans) for arm, (took, plans) in out.items()}


def _print_storage(conn: psycopg.Connection[Any], projects: dict[tuple[int, str], list[uuid.UUID]]) -> None:
    print("storage, MiB (every project of the size and arm): heap, TOAST")
    for (size, arm), ids in projects.items():
        heap, toast = conn.execute(
            "SELECT sum(pg_relation_size(c.oid)), sum(coalesce(pg_relation_size(nullif(c.reltoastrelid, 0)), 0))"
            " FROM pg_class c WHERE c.relname = ANY(%s)",
            ([_partition(p) for p in ids],),
        ).fetchone() or (0, 0)
        print(f"{size:>16,}  {arm:6}  {int(heap) / 2**20:7.1f}  {int(toast) / 2**20:7.1f}")


def main(argv: list[str] | None = None) -> None:
    """Load each size in both arms, then time the searches and print them."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.search_sizes", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2_000, 5_000, 10_000], help="chunks a project")
    parser.add_argument(
        "--before", choices=sorted(BEFORE), default="toast", help="the layout of the before arm: 0021's or 0022's"
    )
    parser.add_argument("--projects-per-arm", type=int, default=2)
    parser.add_argument("--queries", type=int, default=120, help="timed searches per size, arm and kind")
    parser.add_argument("--unique", type=int, default=2_000, help="passages embedded for real")
    parser.add_argument("--cache-dir", default=str(ROOT / ".local" / "bench"), help="where real embeddings are cached")
    args = parser.parse_args(argv)
    settings = Settings()
    rng = random.Random(3)
    topics = _topics(args.unique, rng)
    texts = [t.passage(rng) for t in topics]
    vectors = _embed_corpus(texts, settings.embedding_tokenizer_path, Path(args.cache_dir))
    from threadline.adapters.embeddings import OnnxMiniLM

    model = OnnxMiniLM(settings.embedding_tokenizer_path, settings.embedding_model_path)
    asked = [topics[i % len(topics)].question(rng) for i in range(args.queries)]
    questions = [(q, model.embed([q])[0]) for q in asked]  # one at a time, as the chat embeds
    with bench_database() as url, psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        container = Container(Settings(database_url=url))
        projects = _build(conn, container, args.sizes, args.projects_per_arm, texts, vectors, args.before)
        scoped = {pid: _scoped_thread(conn, pid) for ids in projects.values() for pid in ids}
        print(f"{'chunks a project':>16}  {'arm':6}  {'search':32}  {'p50 ms':>7}  {'p95 ms':>7}  plan")
        for size in args.sizes:
            for mode in ("vector", "hybrid"):
                for scope in ("project", "one document"):
                    sql = _STATEMENTS[mode].new if scope == "project" else _STATEMENTS[mode].in_thread
                    arms = {arm: projects[(size, arm)] for arm in ARMS}
                    timed = _time(conn, sql, arms, scoped, questions, settings.retrieval_ef_search)
                    for arm, (took, plans) in timed.items():
                        print(
                            f"{size:>16,}  {arm:6}  {mode + ', ' + scope:32}  {percentile(took, 50):7.2f}"
                            f"  {percentile(took, 95):7.2f}  {'/'.join(sorted(plans))}"
                        )
                    ratio = percentile(timed["before"][0], 50) / max(1e-9, percentile(timed["after"][0], 50))
                    print(f"{'':>16}  {'':6}  {'p50 before / after':32}  {ratio:7.2f}x", flush=True)
        _print_storage(conn, projects)
        container.close()


if __name__ == "__main__":
    main()
