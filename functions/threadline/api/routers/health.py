"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from threadline import __version__
from threadline.api.deps import ContainerDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """Service status."""

    status: str
    version: str
    database: str


@router.get("/health")
async def health(container: ContainerDep) -> Health:
    """Report whether the API and its database answer."""

    def ping() -> str:
        with container.db.transaction() as conn:
            conn.execute("SELECT 1")
        return "ok"

    return Health(status="ok", version=__version__, database=await run_in_threadpool(ping))
