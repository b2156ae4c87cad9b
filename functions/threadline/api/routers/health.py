"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from threadline import __version__
from threadline.api.deps import ContainerDep
from threadline.api.errors import API_ERRORS

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """Service status."""

    status: str
    version: str
    database: str


@router.get("/health", responses={503: API_ERRORS[503]})
def health(container: ContainerDep) -> Health:
    """Report whether the API and its database answer (503 `unavailable` when the database does not)."""
    with container.db.transaction() as conn:
        conn.execute("SELECT 1")
    return Health(status="ok", version=__version__, database="ok")
