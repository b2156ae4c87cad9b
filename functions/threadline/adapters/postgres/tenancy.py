"""Teams, projects and API keys in Postgres."""

from __future__ import annotations

from uuid import UUID

from threadline.adapters.postgres.alerts import seed_default_rules
from threadline.adapters.postgres.db import Database, Row
from threadline.domain.errors import Conflict, NotFound
from threadline.domain.tenancy import ADMIN, ApiKeyInfo, DefaultCategory, Principal, Project, Scope, Team

_KEY_COLUMNS = "id, project_id, prefix, name, created_at, revoked_at, last_used_at, scope, origins"


def _team(row: Row) -> Team:
    return Team(id=row["id"], name=row["name"], created_at=row["created_at"])


def _project(row: Row) -> Project:
    return Project(id=row["id"], team_id=row["team_id"], name=row["name"], created_at=row["created_at"])


def _key(row: Row) -> ApiKeyInfo:
    return ApiKeyInfo(**{**row, "origins": tuple(row["origins"])})


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

    def store_api_key(
        self,
        project_id: UUID,
        name: str,
        prefix: str,
        key_hash: bytes,
        scope: Scope = ADMIN,
        origins: tuple[str, ...] = (),
    ) -> ApiKeyInfo:
        with self._db.transaction() as conn:
            row = conn.execute(
                "INSERT INTO api_keys (project_id, name, prefix, key_hash, scope, origins)"
                " VALUES (%(project_id)s, %(name)s, %(prefix)s, %(key_hash)s, %(scope)s, %(origins)s)"
                " RETURNING " + _KEY_COLUMNS,
                {
                    "project_id": project_id,
                    "name": name,
                    "prefix": prefix,
                    "key_hash": key_hash,
                    "scope": scope,
                    "origins": list(origins),
                },
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

    def revoke_api_key(self, project_id: UUID, key: UUID | str, keep_last_admin: bool = False) -> ApiKeyInfo:
        """Revoke by id or by prefix. The project's row is locked first, so two revocations of its last two
        admin keys run one after the other and the second sees that only one is left."""
        params = {
            "project_id": project_id,
            "id": key if isinstance(key, UUID) else None,
            "prefix": key if isinstance(key, str) else None,
        }
        with self._db.transaction() as conn:
            conn.execute("SELECT 1 FROM projects WHERE id = %(project_id)s FOR UPDATE", params)
            row = conn.execute(
                "SELECT id, scope, revoked_at FROM api_keys WHERE project_id = %(project_id)s"
                " AND (id = %(id)s::uuid OR prefix = %(prefix)s::text)",
                params,
            ).fetchone()
            if row is None:
                raise NotFound("API key not found")
            if keep_last_admin and row["scope"] == ADMIN and row["revoked_at"] is None:
                others = conn.execute(
                    "SELECT count(*) AS n FROM api_keys WHERE project_id = %(project_id)s AND scope = 'admin'"
                    " AND revoked_at IS NULL AND id <> %(key_id)s",
                    {**params, "key_id": row["id"]},
                ).fetchone()
                assert others is not None
                if others["n"] == 0:
                    raise Conflict(
                        "this is the project's last active admin key: create another one before revoking it",
                        key_id=str(row["id"]),
                    )
            revoked = conn.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = %(key_id)s"
                " RETURNING " + _KEY_COLUMNS,
                {"key_id": row["id"]},
            ).fetchone()
        assert revoked is not None
        return _key(revoked)

    def principal_for_key_hash(self, key_hash: bytes) -> Principal | None:
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT k.id AS key_id, k.project_id, p.team_id, k.scope, k.origins,"
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
        return Principal(
            project_id=row["project_id"],
            team_id=row["team_id"],
            key_id=row["key_id"],
            scope=row["scope"],
            origins=tuple(row["origins"]),
        )

    def origin_on_widget_key(self, origin: str) -> bool:
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM api_keys WHERE revoked_at IS NULL AND scope = 'widget'"
                " AND origins @> ARRAY[%(origin)s::text]) AS listed",
                {"origin": origin},
            ).fetchone()
        assert row is not None
        return bool(row["listed"])
