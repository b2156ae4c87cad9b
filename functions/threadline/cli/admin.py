"""`threadline admin`: migrations, teams, projects and API keys (and the reports' admin verbs)."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any
from uuid import UUID

from threadline.bootstrap import Container
from threadline.cli import reports
from threadline.domain import tenancy


def configure(sub: Any) -> None:
    """Add `threadline admin` and its verbs."""
    admin = sub.add_parser("admin", help="teams, projects and API keys")
    verbs = admin.add_subparsers(dest="verb", required=True)
    verbs.add_parser("migrate", help="apply pending database migrations").set_defaults(func=_migrate)
    team = verbs.add_parser("create-team", help="create a team")
    team.add_argument("name")
    team.set_defaults(func=_create_team)
    project = verbs.add_parser("create-project", help="create a project (with the default categories)")
    project.add_argument("team_id", type=UUID)
    project.add_argument("name")
    project.set_defaults(func=_create_project)
    key = verbs.add_parser("create-key", help="create a project API key (printed once)")
    key.add_argument("project_id", type=UUID, nargs="?", help="the project (or --project)")
    key.add_argument("--project", type=UUID, dest="project_option")
    key.add_argument("--name", default="default")
    key.add_argument("--scope", choices=[tenancy.ADMIN, tenancy.WIDGET], default=tenancy.ADMIN)
    key.add_argument(
        "--origin", action="append", default=[], dest="origins", help="a widget key's page origin (repeatable)"
    )
    key.set_defaults(func=_create_key)
    revoke = verbs.add_parser("revoke-key", help="revoke a key by its prefix (or id)")
    revoke.add_argument("project_id", type=UUID)
    revoke.add_argument("prefix")
    revoke.set_defaults(func=_revoke_key)
    listing = verbs.add_parser("list", help="list teams, projects of a team, or keys of a project")
    listing.add_argument("what", choices=["teams", "projects", "keys"])
    listing.add_argument("--team", type=UUID)
    listing.add_argument("--project", type=UUID)
    listing.set_defaults(func=_list)
    reports.configure_admin(verbs)


def _migrate(_: argparse.Namespace, container: Container) -> object:
    from threadline.adapters.postgres.migrate import migrate

    return {"applied": migrate(container.settings.database_url, container.settings.migrations_dir)}


def _create_team(args: argparse.Namespace, container: Container) -> object:
    return tenancy.create_team(container.tenancy, args.name)


def _create_project(args: argparse.Namespace, container: Container) -> object:
    return tenancy.create_project(container.tenancy, args.team_id, args.name)


def _create_key(args: argparse.Namespace, container: Container) -> object:
    project_id = args.project_option or args.project_id
    if project_id is None:
        raise SystemExit("create-key needs a project: --project ID")
    issued = tenancy.issue_api_key(container.tenancy, project_id, args.name, args.scope, args.origins)
    return {"key": issued.key, **asdict(issued.info)}


def _revoke_key(args: argparse.Namespace, container: Container) -> object:
    return container.tenancy.revoke_api_key(args.project_id, _key_ref(args.prefix))


def _key_ref(text: str) -> UUID | str:
    """A key's id when the text is one, else its prefix."""
    try:
        return UUID(text)
    except ValueError:
        return text


def _list(args: argparse.Namespace, container: Container) -> object:
    repo = container.tenancy
    if args.what == "teams":
        return repo.list_teams()
    if args.what == "projects":
        return repo.list_projects(args.team)
    if args.project is None:
        raise SystemExit("list keys needs --project")
    return repo.list_api_keys(args.project)
