"""The migrator against a real database."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from tests.conftest import _with_dbname
from threadline.adapters.postgres.migrate import MigrationError, migrate

MIGRATIONS = Path(__file__).resolve().parents[2] / "infra" / "db" / "migrations"


def _empty_database(admin_url: str) -> str:
    name = f"empty_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return _with_dbname(admin_url, name)


def _migrated_before(admin_url: str, folder: Path, version: int) -> str:
    """A new database migrated up to just before `version` (the earlier migrations copied into `folder`)."""
    database_url = _empty_database(admin_url)
    for path in MIGRATIONS.glob("*.sql"):
        if int(path.name[:4]) < version:
            (folder / path.name).write_text(path.read_text())
    migrate(database_url, folder)
    return database_url


def _vector(value: float) -> str:
    """A 384-dimension vector literal with every component `value`."""
    return "[" + ",".join([str(value)] * 384) + "]"


def _team(conn: psycopg.Connection[tuple[object, ...]]) -> object:
    row = conn.execute("INSERT INTO teams (name) VALUES ('t') RETURNING id").fetchone()
    assert row is not None
    return row[0]


def _project(conn: psycopg.Connection[tuple[object, ...]], team: object, name: str, contents: list[str]) -> object:
    """A project (0015's trigger makes its partition) with one document holding a chunk of each of `contents`,
    committed."""
    project = conn.execute("INSERT INTO projects (team_id, name) VALUES (%s, %s) RETURNING id", (team, name)).fetchone()
    assert project is not None
    document = conn.execute(
        "INSERT INTO documents (project_id, title, content_type, content_hash) VALUES (%s, 'd', 'text/plain', 'h')"
        " RETURNING id",
        (project[0],),
    ).fetchone()
    assert document is not None
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO chunks (document_id, project_id, ordinal, content, embedding) VALUES (%s, %s, %s, %s, %s)",
            [(document[0], project[0], n, content, _vector(0.1)) for n, content in enumerate(contents)],
        )
    conn.commit()
    return project[0]


@pytest.mark.integration
def test_migrate_applies_once_and_detects_edits(pg_admin_url: str, tmp_path: Path) -> None:
    # Given an empty database and a migration folder
    database_url = _empty_database(pg_admin_url)
    (tmp_path / "0001_t.sql").write_text("CREATE TABLE t_probe (id int); INSERT INTO t_probe VALUES (1);")
    # When it is applied twice
    first = migrate(database_url, tmp_path)
    second = migrate(database_url, tmp_path)
    # Then it ran once
    assert first == ["0001_t.sql"] and second == []
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM t_probe").fetchone() == (1,)
    # And an applied file that changes is refused
    (tmp_path / "0001_t.sql").write_text("CREATE TABLE t_probe (id bigint);")
    with pytest.raises(MigrationError):
        migrate(database_url, tmp_path)


@pytest.mark.integration
def test_core_schema_has_pgvector_and_hnsw(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone() is not None
        index = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'chunks_embedding_hnsw'").fetchone()
    assert index is not None and "hnsw" in index[0]


def _graph_options(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, list[str]]:
    """Each partition's HNSW index and its storage parameters."""
    rows = conn.execute(
        "SELECT t.relname, i.reloptions FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
        " JOIN pg_class t ON t.oid = x.indrelid JOIN pg_am a ON a.oid = i.relam"
        " WHERE a.amname = 'hnsw' AND t.relname LIKE 'chunks\\_%%' AND t.relkind = 'r'"
    ).fetchall()
    return {str(name): list(options) for name, options in rows}  # type: ignore[call-overload]


@pytest.mark.integration
def test_denser_graphs_rebuild_existing_partitions_and_reach_new_ones(pg_admin_url: str, tmp_path: Path) -> None:
    # Given a database migrated up to just before 0020, with a project (so a partition and its graph) and a chunk
    database_url = _migrated_before(pg_admin_url, tmp_path, 20)
    with psycopg.connect(database_url) as conn:
        team = _team(conn)
        older = _project(conn, team, "old", ["x"])
        before = _graph_options(conn)
        assert len(before) == 1 and all(sorted(o) == ["ef_construction=64", "m=16"] for o in before.values())
    # When the rest of the migrations run, and a project is created afterwards
    migrate(database_url, MIGRATIONS)
    with psycopg.connect(database_url) as conn:
        _project(conn, team, "new", [])
        options = _graph_options(conn)
        # Then both partitions' graphs are built with ef_construction 128, m unchanged, and the graph finds the chunk
        assert len(options) == 2
        assert all(sorted(o) == ["ef_construction=128", "m=16"] for o in options.values()), options
        conn.execute("SET enable_seqscan = off")
        found = conn.execute(
            "SELECT content FROM chunks WHERE project_id = %s ORDER BY embedding <=> %s LIMIT 1",
            (older, _vector(0.2)),
        ).fetchall()
        assert found == [("x",)]


def _out_of_line_embeddings(conn: psycopg.Connection[tuple[object, ...]], project: object) -> tuple[int, int]:
    """(chunks of the project whose embedding is stored in TOAST, all its chunks)."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE pg_column_toast_chunk_id(embedding) IS NOT NULL), count(*)"
        " FROM chunks WHERE project_id = %s",
        (project,),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])  # type: ignore[call-overload]


@pytest.mark.integration
def test_inline_embeddings_rewrite_existing_partitions_and_reach_new_ones(pg_admin_url: str, tmp_path: Path) -> None:
    # Given a database migrated up to just before 0021, with a project whose chunks are long enough for TOAST
    # (content, tsvector and BM25 terms beside the 1,544-byte embedding pass the ~2 kB threshold)
    database_url = _migrated_before(pg_admin_url, tmp_path, 21)
    words = " ".join(f"topic{i} configures webhook retries for invoices and exports" for i in range(30))
    long_chunks = [f"{words} {n}" for n in range(20)]
    with psycopg.connect(database_url) as conn:
        team = _team(conn)
        older = _project(conn, team, "old", long_chunks)
        assert _out_of_line_embeddings(conn, older) == (20, 20)  # the layout 0021 changes
        ids_before = conn.execute("SELECT id FROM chunks ORDER BY id").fetchall()
    # When the rest of the migrations run, and a project is created afterwards and ingests the same chunks
    migrate(database_url, MIGRATIONS)
    with psycopg.connect(database_url) as conn:
        newer = _project(conn, team, "new", long_chunks)
        # Then every embedding is in its row, the old project's chunks kept (same ids), and both partitions
        # say MAIN, so chunks stored later stay in the row too
        assert _out_of_line_embeddings(conn, older) == (0, 20)
        assert _out_of_line_embeddings(conn, newer) == (0, 20)
        assert (
            conn.execute("SELECT id FROM chunks WHERE project_id = %s ORDER BY id", (older,)).fetchall() == ids_before
        )
        storage = conn.execute(
            "SELECT c.relname, a.attstorage FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " WHERE a.attname = 'embedding' AND c.relname LIKE 'chunks\\_%%' AND c.relkind = 'r'"
        ).fetchall()
        assert len(storage) == 2 and {s for _, s in storage} == {"m"}, storage
        # And no partition is left marked for CLUSTER, and its graph (rebuilt by the rewrite) still finds the chunks
        assert conn.execute("SELECT count(*) FROM pg_index WHERE indisclustered").fetchone() == (0,)
        conn.execute("SET enable_seqscan = off")
        found = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM chunks WHERE project_id = %s ORDER BY embedding <=> %s LIMIT 5) f",
            (older, _vector(0.2)),
        ).fetchone()
        assert found == (5,)


def _gin_options(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, list[str] | None]:
    """Each partition's full-text (GIN) index and its storage parameters."""
    rows = conn.execute(
        "SELECT t.relname, i.reloptions FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
        " JOIN pg_class t ON t.oid = x.indrelid JOIN pg_am a ON a.oid = i.relam"
        " WHERE a.amname = 'gin' AND t.relname LIKE 'chunks\\_%%' AND t.relkind = 'r'"
    ).fetchall()
    return {str(name): options for name, options in rows}  # type: ignore[misc]


@pytest.mark.integration
def test_full_text_indexes_lose_their_pending_lists_in_existing_partitions_and_new_ones(
    pg_admin_url: str, tmp_path: Path
) -> None:
    # Given a database migrated up to just before 0022, with a project and a chunk: its partition's GIN index
    # has the default pending list (fastupdate on, no option set)
    database_url = _migrated_before(pg_admin_url, tmp_path, 22)
    with psycopg.connect(database_url) as conn:
        team = _team(conn)
        older = _project(conn, team, "old", ["Webhook retries back off"])
        assert list(_gin_options(conn).values()) == [None]
    # When the rest of the migrations run, and a project is created afterwards
    migrate(database_url, MIGRATIONS)
    with psycopg.connect(database_url) as conn:
        _project(conn, team, "new", [])
        # Then both partitions' GIN indexes write lexemes straight into the index, and the old chunk is found by it
        options = _gin_options(conn)
        assert len(options) == 2 and all(o == ["fastupdate=off"] for o in options.values()), options
        conn.execute("SET enable_seqscan = off")
        found = conn.execute(
            "SELECT content FROM chunks WHERE project_id = %s AND search @@ to_tsquery('english', 'webhook')",
            (older,),
        ).fetchall()
        assert found == [("Webhook retries back off",)]
