"""The demo team, project and API key of `make dev`, kept across runs, and the one-time setup hooks."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from threadline.bootstrap import Container
from threadline.domain import tenancy
from threadline.domain.errors import DomainError
from threadline.local.cloud import LocalCloud

_LOG = logging.getLogger("threadline.local.demo")
DEMO_TEAM = "Demo team"
DEMO_PROJECT = "Threadline docs"


@dataclass(frozen=True)
class Demo:
    """What a newcomer needs to try the API."""

    team_id: UUID
    project_id: UUID
    api_key: str


@dataclass(frozen=True)
class DemoContext:
    """What a demo setup hook gets: the stack's container, the local cloud, the demo project and the repo."""

    container: Container
    cloud: LocalCloud
    demo: Demo
    app_url: str
    repo_root: Path


DemoSetup = Callable[[DemoContext], None]


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _still_valid(container: Container, saved: dict[str, Any]) -> Demo | None:
    if not {"team_id", "project_id", "api_key"} <= saved.keys():
        return None
    try:
        principal = tenancy.authenticate(container.tenancy, saved["api_key"])
    except DomainError:
        return None  # another database, or the key was revoked
    if str(principal.project_id) != saved["project_id"]:
        return None
    return Demo(UUID(saved["team_id"]), UUID(saved["project_id"]), saved["api_key"])


def ensure_demo(container: Container, state_file: Path) -> tuple[Demo, bool]:
    """The demo of the previous run if its key still works, else a new one; returns (demo, created)."""
    saved = _load(state_file)
    if demo := _still_valid(container, saved):
        return demo, False
    team = tenancy.create_team(container.tenancy, DEMO_TEAM)
    project = tenancy.create_project(container.tenancy, team.id, DEMO_PROJECT)
    issued = tenancy.issue_api_key(container.tenancy, project.id, "demo")
    demo = Demo(team.id, project.id, issued.key)
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps({k: str(v) for k, v in asdict(demo).items()}, indent=2), encoding="utf-8")
    return demo, True


def run_setup_hooks(hooks: list[DemoSetup], context: DemoContext, state_file: Path) -> list[str]:
    """Run each hook not yet run for this demo project (remembered in `state_file`); returns those run."""
    saved = json.loads(state_file.read_text(encoding="utf-8")) if state_file.is_file() else {}
    done: dict[str, list[str]] = saved.get("setup_done", {})
    project_done = set(done.get(str(context.demo.project_id), []))
    ran = []
    for hook in hooks:
        name = f"{hook.__module__}.{hook.__qualname__}"
        if name in project_done:
            continue
        hook(context)
        project_done.add(name)
        ran.append(name)
    done[str(context.demo.project_id)] = sorted(project_done)
    saved["setup_done"] = done
    state_file.write_text(json.dumps(saved, indent=2), encoding="utf-8")
    return ran


def write_env_file(path: Path, demo: Demo, app_url: str) -> None:
    """`.local/demo.env`: THREADLINE_URL, PROJECT_ID and API_KEY, ready for `source` or `--env-file`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"THREADLINE_URL={app_url}\nPROJECT_ID={demo.project_id}\nAPI_KEY={demo.api_key}\n", encoding="utf-8"
    )
