"""`Database.one`, `all` and `run` against a real database: one statement each, rows mapped, errors mapped."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from threadline.adapters.postgres.db import Database, class_row
from threadline.domain.errors import Conflict, NotFound

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class _Team:
    id: UUID
    name: str


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url, max_size=2)
    yield database
    database.close()


def test_one_maps_the_row_and_a_missing_row_is_none_or_the_callers_error(db: Database) -> None:
    # Given one team
    created = db.one("INSERT INTO teams (name) VALUES ('Acme') RETURNING id, name", row=class_row(_Team))
    assert created is not None

    # When it is read back, and a team that does not exist is read with and without `missing`
    found = db.one("SELECT id, name FROM teams WHERE id = %(id)s", {"id": created.id}, row=class_row(_Team))
    absent = db.one("SELECT id FROM teams WHERE name = 'nobody'")
    with pytest.raises(NotFound) as error:
        db.one("SELECT id FROM teams WHERE name = 'nobody'", missing=NotFound("team not found", name="nobody"))

    # Then the row is the class, an absent row is None, and `missing` is raised as given
    assert found == _Team(id=created.id, name="Acme")
    assert absent is None
    assert error.value.message == "team not found" and error.value.details == {"name": "nobody"}


def test_all_maps_every_row_and_run_returns_the_rows_affected(db: Database) -> None:
    # Given two teams
    for name in ("Beta", "Alpha"):
        db.run("INSERT INTO teams (name) VALUES (%(name)s)", {"name": name})

    # When they are listed, then renamed
    names = db.all("SELECT name FROM teams ORDER BY name", row=lambda r: str(r["name"]))
    renamed = db.run("UPDATE teams SET name = name || '!'")

    # Then the list is mapped in order and the update counts both rows
    assert names == ["Alpha", "Beta"]
    assert renamed == 2
    assert [r["name"] for r in db.all("SELECT name FROM teams ORDER BY name")] == ["Alpha!", "Beta!"]


def test_a_driver_error_becomes_a_domain_error_and_the_statement_is_rolled_back(db: Database) -> None:
    # Given a project with a category (names are unique per project)
    team = db.one("INSERT INTO teams (name) VALUES ('Acme') RETURNING id", missing=NotFound("team"))
    project = db.one("INSERT INTO projects (team_id, name) VALUES (%(team)s, 'Bot') RETURNING id", {"team": team["id"]})
    assert project is not None
    insert = "INSERT INTO categories (project_id, name, description) VALUES (%(project)s, 'Billing', '')"
    db.run(insert, {"project": project["id"]})

    # When the same category is inserted again, and one for a project that does not exist
    with pytest.raises(Conflict):
        db.run(insert, {"project": project["id"]})
    with pytest.raises(NotFound):
        db.run(insert, {"project": UUID(int=1)})

    # Then the errors are the domain's (the error table's 409 and 404) and the first row is the only one
    assert db.all("SELECT name FROM categories") == [{"name": "Billing"}]


def _checks(monkeypatch: pytest.MonkeyPatch) -> list[psycopg.Connection[Any]]:
    # Every check the pool runs goes through psycopg_pool's own empty-query check: count them.
    seen: list[psycopg.Connection[Any]] = []
    original = ConnectionPool.check_connection

    def counted(conn: psycopg.Connection[Any]) -> None:
        seen.append(conn)
        original(conn)

    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(counted))
    return seen


def test_a_connection_used_a_moment_ago_is_handed_out_without_a_check_round_trip(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = _checks(monkeypatch)
    db = Database(database_url, max_size=1, check_idle_after_s=60)
    try:
        # The pool's one connection is checked when first handed out (never returned yet), then not again
        for _ in range(5):
            assert db.one("SELECT 1 AS one") == {"one": 1}
        assert len(checks) == 1
    finally:
        db.close()


def test_a_connection_idle_past_the_limit_is_checked_and_a_dead_one_replaced(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = _checks(monkeypatch)
    db = Database(database_url, max_size=1, check_idle_after_s=0.2)
    try:
        pid = db.one("SELECT pg_backend_pid() AS pid")
        assert pid is not None
        # When the server drops the idle connection, and it sits longer than the limit
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid["pid"],))
        time.sleep(0.3)
        # Then the next statement still runs: the check found the dead connection and the pool made a new one
        again = db.one("SELECT pg_backend_pid() AS pid")
        assert again is not None and again["pid"] != pid["pid"]
        assert len(checks) >= 2
    finally:
        db.close()
