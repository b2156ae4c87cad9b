"""Teams, projects and API keys in Postgres."""

from __future__ import annotations

from uuid import UUID

from threadline.adapters.postgres.alerts import seed_default_rules
from threadline.adapters.postgres.db import Database, Row
from threadline.domain.errors import NotFound
from threadline.domain.tenancy import ApiKeyInfo, DefaultCategory, Principal, Project, Team

_KEY_COLUMNS = "id, project_id, prefix, name, created_at, revoked_at, last_used_at"


def _team(row: Row) -> Team:
    return Team(id=row["id"], name=row["name"], created_at=row["created_at"])


def _project(row: Row) -> Project:
    return Project(id=row["id"], team_id=row["team_id"], name=row["name"], created_at=row["created_at"])


def _key(row: Row) -> ApiKeyInfo:
    return ApiKeyInfo(**row)


class PostgresTenancy:
    """`TenancyRepository` over Postgres."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create_team(self, name: str) -> Team:
        with self._db.transaction() as conn:
            row = conn.execute(
                "INSERT INTO teams (name) VALUES (%(name)s) RETURNING id, name, created_at", {"name": name}
            ).fetchone()
        assert row is not None
        return _team(row)

    def get_team(self, team_id: UUID) -> Team:
        with self._db.transaction() as conn:
            row = conn.execute("SELECT id, name, created_at FROM teams WHERE id = %(id)s", {"id": team_id}).fetchone()
        if row is None:
            raise NotFound("team not found")
        return _team(row)

    def list_teams(self) -> list[Team]:
        with self._db.transaction() as conn:
            rows = conn.execute("SELECT id, name, created_at FROM teams ORDER BY created_at, id").fetchall()
        return [_team(r) for r in rows]

    def create_project(self, team_id: UUID, name: str, categories: tuple[DefaultCategory, ...]) -> Project:
        with self._db.transaction() as conn:
            row = conn.execute(
                "INSERT INTO projects (team_id, name) VALUES (%(team_id)s, %(name)s)"
                " RETURNING id, team_id, name, created_at",
                {"team_id": team_id, "name": name},
            ).fetchone()
            assert row is not None
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO categories (project_id, name, description, examples)"
                    " VALUES (%(project_id)s, %(name)s, %(description)s, %(examples)s)",
                    [
                        {
                            "project_id": row["id"],
                            "name": c.name,
                            "description": c.description,
                            "examples": list(c.examples),
                        }
                        for c in categories
                    ],
                )
            # Alerting works from the first interaction: the project starts with the default rules.
            seed_default_rules(conn, row["id"])
        return _project(row)

    def get_project(self, project_id: UUID) -> Project:
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT id, team_id, name, created_at FROM projects WHERE id = %(id)s", {"id": project_id}
            ).fetchone()
        if row is None:
            raise NotFound("project not found")
        return _project(row)

    def list_projects(self, team_id: UUID | None = None) -> list[Project]:
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT id, team_id, name, created_at FROM projects"
                " WHERE %(team_id)s::uuid IS NULL OR team_id = %(team_id)s ORDER BY created_at, id",
                {"team_id": team_id},
            ).fetchall()
        return [_project(r) for r in rows]

    def store_api_key(self, project_id: UUID, name: str, prefix: str, key_hash: bytes) -> ApiKeyInfo:
        with self._db.transaction() as conn:
            row = conn.execute(
                "INSERT INTO api_keys (project_id, name, prefix, key_hash)"
                " VALUES (%(project_id)s, %(name)s, %(prefix)s, %(key_hash)s) RETURNING " + _KEY_COLUMNS,
                {"project_id": project_id, "name": name, "prefix": prefix, "key_hash": key_hash},
            ).fetchone()
        assert row is not None
        return _key(row)

    def list_api_keys(self, project_id: UUID) -> list[ApiKeyInfo]:
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT " + _KEY_COLUMNS + " FROM api_keys WHERE project_id = %(project_id)s ORDER BY created_at, id",
                {"project_id": project_id},
            ).fetchall()
        return [_key(r) for r in rows]

    def revoke_api_key(self, project_id: UUID, prefix: str) -> ApiKeyInfo:
        with self._db.transaction() as conn:
            row = conn.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
                " WHERE project_id = %(project_id)s AND prefix = %(prefix)s RETURNING " + _KEY_COLUMNS,
                {"project_id": project_id, "prefix": prefix},
            ).fetchone()
        if row is None:
            raise NotFound("API key not found")
        return _key(row)

    def principal_for_key_hash(self, key_hash: bytes) -> Principal | None:
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT k.id AS key_id, k.project_id, p.team_id,"
                " (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute') AS stale"
                " FROM api_keys k JOIN projects p ON p.id = k.project_id"
                " WHERE k.key_hash = %(key_hash)s AND k.revoked_at IS NULL",
                {"key_hash": key_hash},
            ).fetchone()
            # last_used_at is only a hint, so it is written at most once a minute per key, off the read path.
            if row is not None and row["stale"]:
                conn.execute("UPDATE api_keys SET last_used_at = now() WHERE id = %(id)s", {"id": row["key_id"]})
        if row is None:
            return None
        return Principal(project_id=row["project_id"], team_id=row["team_id"], key_id=row["key_id"])
