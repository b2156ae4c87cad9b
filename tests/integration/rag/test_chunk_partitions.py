"""Chunks live in one LIST partition per project (migration 0015): each project searches only its own graph."""

from __future__ import annotations

import shutil
from pathlib import Path
from uuid import UUID

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

from threadline.adapters.postgres.migrate import migrate
from threadline.bootstrap import Container
from threadline.domain import tenancy
from threadline.domain.chunking import ChunkDraft

pytestmark = pytest.mark.integration

MIGRATIONS = Path(__file__).resolve().parents[3] / "infra" / "db" / "migrations"
DIM = 384


def _partition(project_id: UUID) -> str:
    return "chunks_" + project_id.hex


def _vectors(count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(count, DIM)).astype(np.float32)
    return list(rows / np.linalg.norm(rows, axis=1, keepdims=True))


def _document(container: Container, project_id: UUID, name: str, count: int, seed: int) -> UUID:
    claim = container.documents.claim(project_id, name, "", "text/plain", name, 10)
    drafts = [ChunkDraft(ordinal=i, heading="", content=f"{name} {i}") for i in range(count)]
    container.documents.set_total(claim.document.id, project_id, count)
    container.documents.add_chunks(claim.document.id, project_id, 0, drafts, _vectors(count, seed))
    container.documents.finish(claim.document.id, project_id)
    return claim.document.id


def test_a_project_gets_its_partition_and_its_search_reads_only_that(container: Container, database_url: str) -> None:
    # Given two projects with a document each
    team = tenancy.create_team(container.tenancy, "t")
    first = tenancy.create_project(container.tenancy, team.id, "first")
    second = tenancy.create_project(container.tenancy, team.id, "second")
    _document(container, first.id, "a", 30, 1)
    _document(container, second.id, "b", 20, 2)

    # When the rows and the retrieval's plan are read
    with psycopg.connect(database_url) as conn:
        register_vector(conn)
        placed = dict(conn.execute("SELECT tableoid::regclass::text, count(*) FROM chunks GROUP BY 1").fetchall())
        plan = "\n".join(
            str(r[0])
            for r in conn.execute(
                "EXPLAIN SELECT id FROM chunks WHERE project_id = %s ORDER BY embedding <=> %s LIMIT 5",
                (first.id, _vectors(1, 3)[0]),
            )
        )

    # Then each project's chunks are in its own partition, and the search plan touches only the first's
    assert placed == {_partition(first.id): 30, _partition(second.id): 20}
    assert _partition(first.id) in plan and _partition(second.id) not in plan


def test_deleting_a_document_or_a_project_removes_only_its_chunks(container: Container, database_url: str) -> None:
    # Given a project with two documents and another project with one
    team = tenancy.create_team(container.tenancy, "t")
    kept = tenancy.create_project(container.tenancy, team.id, "kept")
    gone = tenancy.create_project(container.tenancy, team.id, "gone")
    doomed = _document(container, kept.id, "doomed", 5, 1)
    _document(container, kept.id, "stays", 7, 2)
    _document(container, gone.id, "other", 9, 3)

    # When one document of the first project is deleted, and the second project is deleted
    container.documents.delete(kept.id, doomed)
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM projects WHERE id = %s", (gone.id,))
        conn.commit()
        counts = dict(conn.execute("SELECT project_id, count(*) FROM chunks GROUP BY 1").fetchall())
        partitions = {
            r[0]
            for r in conn.execute(
                "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'chunks'::regclass"
            )
        }

    # Then only the deleted document's chunks went from the first project, and the second's partition is gone
    assert counts == {kept.id: 7}
    assert partitions == {_partition(kept.id)}


def test_a_chunk_cannot_point_at_another_projects_document(container: Container, database_url: str) -> None:
    # Given a document of one project
    team = tenancy.create_team(container.tenancy, "t")
    owner = tenancy.create_project(container.tenancy, team.id, "owner")
    intruder = tenancy.create_project(container.tenancy, team.id, "intruder")
    document = _document(container, owner.id, "a", 1, 1)

    # When a chunk of the other project names it, Then the foreign key refuses it
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.ForeignKeyViolation):
        register_vector(conn)
        conn.execute(
            "INSERT INTO chunks (document_id, project_id, ordinal, content, embedding) VALUES (%s, %s, 0, 'x', %s)",
            (document, intruder.id, _vectors(1, 4)[0]),
        )


def test_the_migration_moves_existing_chunks_into_their_projects_partitions(pg_admin_url: str, tmp_path: Path) -> None:
    # Given a database migrated up to 0014 with chunks in the single table
    before = tmp_path / "before"
    before.mkdir()
    for path in sorted(MIGRATIONS.glob("*.sql")):
        if int(path.name[:4]) < 15:
            shutil.copy(path, before / path.name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS partition_move")
        conn.execute("CREATE DATABASE partition_move")
    url = psycopg.conninfo.make_conninfo(pg_admin_url, dbname="partition_move")
    try:
        migrate(url, before)
        with psycopg.connect(url) as conn:
            register_vector(conn)
            project = conn.execute(
                "WITH t AS (INSERT INTO teams (name) VALUES ('t') RETURNING id)"
                " INSERT INTO projects (team_id, name) SELECT id, 'p' FROM t RETURNING id"
            ).fetchone()
            assert project is not None
            document = conn.execute(
                "INSERT INTO documents (project_id, title, content_type, content_hash)"
                " VALUES (%s, 'd', 'text/plain', 'h') RETURNING id",
                (project[0],),
            ).fetchone()
            assert document is not None
            for ordinal, vector in enumerate(_vectors(3, 5)):
                conn.execute(
                    "INSERT INTO chunks (document_id, project_id, ordinal, content, embedding)"
                    " VALUES (%s, %s, %s, 'c', %s)",
                    (document[0], project[0], ordinal, vector),
                )
            ids_before = [r[0] for r in conn.execute("SELECT id FROM chunks ORDER BY id")]
            conn.commit()

        # When the rest of the migrations run
        migrate(url, MIGRATIONS)

        # Then the chunks kept their ids in the project's partition, and new ids continue after them
        with psycopg.connect(url) as conn:
            register_vector(conn)
            moved = conn.execute("SELECT id, tableoid::regclass::text FROM chunks ORDER BY id").fetchall()
            searchable = conn.execute("SELECT count(*) FROM chunks WHERE search @@ 'c'::tsquery").fetchone()
            counted = conn.execute(
                "SELECT chunks FROM chunk_lexemes WHERE project_id = %s AND lexeme = ''", (project[0],)
            ).fetchone()
            next_id = conn.execute(
                "INSERT INTO chunks (document_id, project_id, ordinal, content, embedding)"
                " VALUES (%s, %s, 9, 'c', %s) RETURNING id",
                (document[0], project[0], _vectors(1, 6)[0]),
            ).fetchone()
        assert moved == [(i, _partition(project[0])) for i in ids_before]
        # And 0017 gave the moved chunks their full text and counted them for BM25
        assert searchable == (len(ids_before),) and counted == (len(ids_before),)
        assert next_id is not None and next_id[0] > max(ids_before)
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS partition_move WITH (FORCE)")
