"""Liveness (`/health`, no dependencies) and readiness (`/ready`, the database answers)."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from threadline import __version__
from threadline.api.deps import ContainerDep
from threadline.api.routing import contract_router

router = contract_router(tags=["health"], responses=None)


class Health(BaseModel):
    """The process answers."""

    status: str
    version: str


class Readiness(BaseModel):
    """Service status with its database."""

    status: str
    version: str
    database: str


@router.get("/health")
def health() -> Health:
    """Liveness: the process serves requests. It touches nothing else, so it stays cheap and answers even
    with the database down: it is the Lambda Web Adapter's readiness check (AWS_LWA_READINESS_CHECK_PATH),
    polled at every cold start, where a database round trip would only slow the start down."""
    return Health(status="ok", version=__version__)


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
def ready(container: ContainerDep) -> Readiness | JSONResponse:
    """Readiness: whether the database answers too (503 when it does not)."""
    try:
        with container.db.transaction() as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any failure to reach the database means not ready
        body = Readiness(status="unavailable", version=__version__, database=type(exc).__name__)
        return JSONResponse(status_code=503, content=body.model_dump())
    return Readiness(status="ok", version=__version__, database="ok")
