"""The `threadline` command: the local stack, administration, and operator tasks."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, is_dataclass
from typing import Any
from uuid import UUID

from threadline.bootstrap import Container, get_container
from threadline.domain import tenancy
from threadline.domain.errors import DomainError

Command = Callable[[argparse.Namespace, Container], object]
_COMMANDS: dict[str, Command] = {}


def _emit(value: object) -> None:
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, list):
        value = [asdict(v) if is_dataclass(v) and not isinstance(v, type) else v for v in value]
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def _admin_parser(sub: Any) -> None:
    admin = sub.add_parser("admin", help="teams, projects and API keys")
    verbs = admin.add_subparsers(dest="verb", required=True)
    verbs.add_parser("migrate", help="apply pending database migrations")
    team = verbs.add_parser("create-team", help="create a team")
    team.add_argument("name")
    project = verbs.add_parser("create-project", help="create a project (with the default categories)")
    project.add_argument("team_id", type=UUID)
    project.add_argument("name")
    key = verbs.add_parser("create-key", help="create a project API key (printed once)")
    key.add_argument("project_id", type=UUID)
    key.add_argument("--name", default="default")
    revoke = verbs.add_parser("revoke-key", help="revoke a key by its prefix")
    revoke.add_argument("project_id", type=UUID)
    revoke.add_argument("prefix")
    listing = verbs.add_parser("list", help="list teams, projects of a team, or keys of a project")
    listing.add_argument("what", choices=["teams", "projects", "keys"])
    listing.add_argument("--team", type=UUID)
    listing.add_argument("--project", type=UUID)
    for build in _ADMIN_BUILDERS:
        build(verbs)


def _admin(args: argparse.Namespace, container: Container) -> object:
    repo = container.tenancy
    verb: str = args.verb
    if verb == "migrate":
        from threadline.adapters.postgres.migrate import migrate

        return {"applied": migrate(container.settings.database_url, container.settings.migrations_dir)}
    if verb == "create-team":
        return tenancy.create_team(repo, args.name)
    if verb == "create-project":
        return tenancy.create_project(repo, args.team_id, args.name)
    if verb == "create-key":
        issued = tenancy.issue_api_key(repo, args.project_id, args.name)
        return {"key": issued.key, **asdict(issued.info)}
    if verb == "revoke-key":
        return repo.revoke_api_key(args.project_id, args.prefix)
    if verb in _ADMIN_VERBS:
        return _ADMIN_VERBS[verb](args, container)
    return _admin_list(args, repo)


def _admin_list(args: argparse.Namespace, repo: tenancy.TenancyRepository) -> object:
    if args.what == "teams":
        return repo.list_teams()
    if args.what == "projects":
        return repo.list_projects(args.team)
    if args.project is None:
        raise SystemExit("list keys needs --project")
    return repo.list_api_keys(args.project)


_COMMANDS["admin"] = _admin


def register(name: str, build: Callable[[Any], None], run: Command) -> None:
    """Add a subcommand (used by the local cloud and operator modules)."""
    _BUILDERS.append(build)
    _COMMANDS[name] = run


def register_admin(verb: str, build: Callable[[Any], None], run: Command) -> None:
    """Add a verb under `threadline admin` (build receives the admin verbs' subparsers)."""
    _ADMIN_BUILDERS.append(build)
    _ADMIN_VERBS[verb] = run


_BUILDERS: list[Callable[[Any], None]] = [_admin_parser]
_ADMIN_BUILDERS: list[Callable[[Any], None]] = []
_ADMIN_VERBS: dict[str, Command] = {}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    # Operator modules register their subcommands on import.
    import threadline.backfill_cli
    import threadline.cli_reports
    import threadline.local.commands  # noqa: F401  (each registers its subcommands)

    parser = argparse.ArgumentParser(prog="threadline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for build in _BUILDERS:
        build(sub)
    return parser


def run(argv: Sequence[str], container: Container) -> object:
    """Parse and run one command on a given container (what `main` does, minus the process setup)."""
    args = build_parser().parse_args(argv)
    return _COMMANDS[args.command](args, container)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    from threadline.local.attach import attach_running_stack
    from threadline.settings import Settings

    # Before the settings are first read: beside a running `make dev`, act on its stack.
    attach_running_stack(Settings().local_dir)
    container = get_container()
    if not container.settings.database_url:
        from threadline.local.postgres import start_embedded

        # With no DATABASE_URL the CLI works on the same embedded database `make dev` uses.
        container.settings.database_url, _ = start_embedded(container.settings.local_dir / "pg", keep_running=True)
    try:
        result = _COMMANDS[args.command](args, container)
    except DomainError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return 1
    if result is not None:
        _emit(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
