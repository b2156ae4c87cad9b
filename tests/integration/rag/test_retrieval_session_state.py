"""Retrieval leaves no session state behind (RDS Proxy would pin such a connection), and still scans iteratively."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

from threadline.adapters.postgres.chat import PostgresChat
from threadline.adapters.postgres.db import Database
from threadline.bootstrap import Container
from threadline.domain import tenancy

pytestmark = pytest.mark.integration

DIM = 384
TOP_K = 6
# The question's words: the default (vector) retrieval reads only its vector.
WORDS = "which chunks are nearest"
# Not pgvector's default (40), so a leaked setting would show.
EF_SEARCH = 60
# pgvector registers its settings when its library loads: the cast loads it, so the defaults can be read.
SESSION_GUCS = (
    "SELECT '[1]'::vector IS NOT NULL AS loaded,"
    " current_setting('hnsw.iterative_scan') AS scan, current_setting('hnsw.ef_search') AS ef"
)


def _near(direction: float, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    base = np.zeros(DIM, dtype=np.float32)
    base[0] = direction
    return [(base + rng.normal(0, 0.05, DIM)).astype(np.float32) for _ in range(count)]


def _add_document(conn: psycopg.Connection[tuple[object, ...]], project_id: UUID, vectors: list[np.ndarray]) -> UUID:
    row = conn.execute(
        "INSERT INTO documents (project_id, title, content_type, content_hash, status)"
        " VALUES (%s, 'doc', 'text/plain', gen_random_uuid()::text, 'ready') RETURNING id",
        (project_id,),
    ).fetchone()
    assert row is not None
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO chunks (document_id, project_id, ordinal, content, embedding) VALUES (%s, %s, %s, %s, %s)",
            [(row[0], project_id, i, f"chunk {i}", v) for i, v in enumerate(vectors)],
        )
    document_id: UUID = row[0]
    return document_id


@pytest.fixture
def selective(container: Container, database_url: str) -> Iterator[tuple[UUID, UUID, np.ndarray]]:
    """A project with a big document near the question and a small one far from it, only HNSW to serve a search.

    Each project has its own partition and graph (migration 0015), so the filter HNSW has to get past is a
    thread's document scope. The document index is dropped and sequential scans and sorts are priced out for every
    session of this database (database defaults, not something a connection sets), so the planner cannot answer
    the small document exactly from its rows: the search goes through HNSW, where a plain scan stops after ef_search
    candidates, all of them the big document's (at a few thousand chunks the planner would rather sort them all).
    Yields the project, a thread scoped to the small document, and the question's vector.
    """
    team = tenancy.create_team(container.tenancy, "t")
    project = tenancy.create_project(container.tenancy, team.id, "p")
    rng = np.random.default_rng(11)
    with psycopg.connect(database_url) as conn:
        register_vector(conn)
        _add_document(conn, project.id, _near(1.0, 1500, rng))
        small = _add_document(conn, project.id, _near(-1.0, 8, rng))
        conn.execute("DROP INDEX chunks_document_idx")
        conn.execute(f'ALTER DATABASE "{conn.info.dbname}" SET enable_seqscan = off')
        conn.execute(f'ALTER DATABASE "{conn.info.dbname}" SET enable_sort = off')
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ANALYZE chunks")
    thread = container.chat.create_thread(project.id, None, [small])
    question = _near(1.0, 1, rng)[0]
    yield project.id, thread.id, question


def test_a_fresh_pooled_connection_carries_no_session_settings(database_url: str) -> None:
    # Given a new pool (what a cold Lambda opens)
    db = Database(database_url, max_size=1)
    try:
        # When its first transaction reads the HNSW settings
        with db.transaction() as conn:
            row = conn.execute(SESSION_GUCS).fetchone()
    finally:
        db.close()
    # Then they are the server's defaults: connecting changed nothing in the session
    assert row == {"loaded": True, "scan": "off", "ef": "40"}


def test_search_scans_iteratively_yet_leaves_the_session_as_it_was(
    database_url: str, selective: tuple[UUID, UUID, np.ndarray]
) -> None:
    project_id, thread_id, question = selective
    # Given: without iterative scans this document-scoped search finds none of the small document's chunks
    with psycopg.connect(database_url) as conn:
        register_vector(conn)
        conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(EF_SEARCH),))
        inner = (
            "SELECT id FROM chunks WHERE project_id = %s AND document_id = ANY((SELECT document_ids FROM threads"
            " WHERE id = %s)::uuid[]) ORDER BY embedding <=> %s LIMIT %s"
        )
        params = (project_id, thread_id, question, TOP_K)
        plan = "\n".join(str(r[0]) for r in conn.execute("EXPLAIN " + inner, params))
        plain = conn.execute(inner, params).fetchall()
    assert "_embedding_idx" in plan and len(plain) < TOP_K

    # When the chat's retrieval runs, several times (psycopg would prepare a statement after five runs)
    db = Database(database_url, max_size=1)
    chat = PostgresChat(db, ef_search=EF_SEARCH)
    try:
        with db.transaction() as conn:
            before = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()
        contexts = [chat.read_context(project_id, thread_id, WORDS, question, TOP_K) for _ in range(6)]
        searched = chat.search(project_id, thread_id, WORDS, question, TOP_K, None)
        with db.transaction() as conn:
            after = conn.execute(SESSION_GUCS + ", pg_backend_pid() AS pid").fetchone()
            prepared = conn.execute("SELECT count(*) AS n FROM pg_prepared_statements").fetchone()
    finally:
        db.close()

    # Then the search got its k passages (relaxed_order kept scanning past the big document's chunks)
    assert all(len(c.passages) == TOP_K for c in contexts) and len(searched) == TOP_K
    # And on that same session nothing was left behind: no settings, no prepared statements
    assert before is not None and after == {"loaded": True, "scan": "off", "ef": "40", "pid": before["pid"]}
    assert prepared == {"n": 0}
