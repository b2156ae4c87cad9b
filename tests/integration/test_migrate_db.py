"""The migrator against a real database."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from tests.conftest import _with_dbname
from threadline.adapters.postgres.migrate import MigrationError, migrate


def _empty_database(admin_url: str) -> str:
    name = f"empty_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return _with_dbname(admin_url, name)


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
