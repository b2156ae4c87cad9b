"""The demo team, project and key of `make dev` survive a restart, and setup hooks run once per project."""

from __future__ import annotations

from pathlib import Path

import pytest

from threadline.bootstrap import Container
from threadline.domain import tenancy
from threadline.local.cloud import LocalCloud
from threadline.local.demo import DemoContext, ensure_demo, run_setup_hooks, write_env_file

pytestmark = pytest.mark.integration


def test_the_demo_is_created_once_and_its_key_authenticates(container: Container, tmp_path: Path) -> None:
    # Given an empty database and no saved state
    state = tmp_path / "demo.json"

    # When the demo is ensured twice (two `make dev` runs)
    first, created_first = ensure_demo(container, state)
    second, created_second = ensure_demo(container, state)

    # Then it was created only the first time, and its key is a working key of its project
    assert (created_first, created_second) == (True, False)
    assert second == first
    assert tenancy.authenticate(container.tenancy, first.api_key).project_id == first.project_id
    assert [p.name for p in container.tenancy.list_projects(first.team_id)] == ["Threadline docs"]


def test_a_revoked_demo_key_is_replaced(container: Container, tmp_path: Path) -> None:
    # Given a saved demo whose key was revoked
    state = tmp_path / "demo.json"
    first, _ = ensure_demo(container, state)
    container.tenancy.revoke_api_key(first.project_id, first.api_key.split("_")[1])

    # When the demo is ensured again
    second, created = ensure_demo(container, state)

    # Then a new demo with a working key takes its place
    assert created and second.api_key != first.api_key
    assert tenancy.authenticate(container.tenancy, second.api_key).project_id == second.project_id


def test_setup_hooks_run_once_per_demo_project_and_the_env_file_is_written(
    container: Container, cloud: LocalCloud, tmp_path: Path
) -> None:
    # Given a demo and a hook
    state = tmp_path / "demo.json"
    demo, _ = ensure_demo(container, state)
    seen: list[str] = []

    def ingest_docs(context: DemoContext) -> None:
        seen.append(str(context.demo.project_id))

    context = DemoContext(container, cloud, demo, "http://127.0.0.1:8000", tmp_path)

    # When dev starts twice
    ran = [run_setup_hooks([ingest_docs], context, state) for _ in range(2)]
    write_env_file(tmp_path / "demo.env", demo, "http://127.0.0.1:8000")

    # Then the hook ran only the first time, for the demo project, and demo.env holds what a shell needs
    assert seen == [str(demo.project_id)]
    assert ran[1] == []
    assert (tmp_path / "demo.env").read_text().splitlines() == [
        "THREADLINE_URL=http://127.0.0.1:8000",
        f"PROJECT_ID={demo.project_id}",
        f"API_KEY={demo.api_key}",
    ]
