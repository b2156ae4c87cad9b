"""Fixtures of the backfill tests: seeded projects (through the real COPY seeder) and the sample events."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from threadline.bootstrap import Container
from threadline.local.seed import Seeder

EVENTS = Path(__file__).resolve().parents[3] / "events" / "stepfunctions"


@dataclass(frozen=True)
class Seeded:
    """Two seeded projects; `project_id` is the bigger one."""

    project_id: UUID
    other_project_id: UUID
    threads: int


def seed(container: Container, threads: int, projects: int = 2) -> Seeded:
    """Seed `threads` threads over `projects` projects; the first project gets the most."""
    Seeder(container.db, container.tenancy, seed=11).seed(threads, projects, days=60)
    with container.db.transaction() as conn:
        rows = conn.execute("SELECT project_id FROM threads GROUP BY project_id ORDER BY count(*) DESC").fetchall()
    return Seeded(project_id=rows[0]["project_id"], other_project_id=rows[1]["project_id"], threads=threads)


def event(name: str, **values: Any) -> dict[str, Any]:
    """A sample event from events/stepfunctions/, with some fields replaced."""
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    data.update({k: str(v) if isinstance(v, UUID) else v for k, v in values.items()})
    return data


def labels(container: Container, project_id: UUID) -> dict[UUID, tuple[Any, ...]]:
    """Every thread of a project: (category_id, label_source, labelled_at)."""
    with container.db.transaction() as conn:
        rows = conn.execute(
            "SELECT id, category_id, label_source, labelled_at FROM threads WHERE project_id = %(p)s",
            {"p": project_id},
        ).fetchall()
    return {r["id"]: (r["category_id"], r["label_source"], r["labelled_at"]) for r in rows}


@pytest.fixture
def seeded(container: Container) -> Seeded:
    """1,200 threads over two projects (about 87% unlabelled, 10% auto, 3% user)."""
    return seed(container, 1200)
