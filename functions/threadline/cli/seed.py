"""`threadline seed`: realistic demo threads, written with COPY."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from threadline.bootstrap import Container


def configure(sub: Any) -> None:
    """Add `threadline seed`."""
    parser = sub.add_parser("seed", help="fill the database with realistic demo threads (COPY)")
    parser.add_argument("--threads", type=int, default=100_000)
    parser.add_argument("--projects", type=int, default=10)
    parser.add_argument("--days", type=int, default=180, help="spread the threads over this many past days")
    parser.add_argument("--seed", type=int, default=7, help="random seed (same seed, same data)")
    parser.set_defaults(func=_seed)


def _seed(args: argparse.Namespace, container: Container) -> object:
    from threadline.local.seed import Seeder

    if args.threads < 0 or args.projects < 1:
        raise SystemExit("--threads must be >= 0 and --projects >= 1")
    return asdict(Seeder(container.db, container.tenancy, args.seed).seed(args.threads, args.projects, args.days))
