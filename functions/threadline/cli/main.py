"""The parser of every `threadline` subcommand, and the console script's entry point."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass

from threadline.bootstrap import Container, get_container
from threadline.cli import admin, backfill, dev, invoke, reports, seed
from threadline.domain.errors import DomainError

# The subcommands, in the order `threadline --help` lists them.
MODULES = (admin, backfill, seed, reports, dev, invoke)
DESCRIPTION = "The `threadline` command: the local stack, administration, and operator tasks."


def _emit(value: object) -> None:
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, list):
        value = [asdict(v) if is_dataclass(v) and not isinstance(v, type) else v for v in value]
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand; each parsed command carries its `func`."""
    parser = argparse.ArgumentParser(prog="threadline", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    for module in MODULES:
        module.configure(sub)
    return parser


def _execute(args: argparse.Namespace, container: Container) -> object:
    return args.func(args, container)


def run(argv: Sequence[str], container: Container) -> object:
    """Parse and run one command on a given container (what `main` does, minus the process setup)."""
    return _execute(build_parser().parse_args(argv), container)


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
        result = _execute(args, container)
    except DomainError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return 1
    if result is not None:
        _emit(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
