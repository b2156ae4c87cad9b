"""Routers of the API contract, and how the app adds their routes: each route is declared once, complete."""

from __future__ import annotations

from enum import Enum
from typing import Any

from fastapi import APIRouter, Depends, FastAPI

from threadline.api.deps import reject_unknown_query
from threadline.api.errors import API_ERRORS


def contract_router(
    *, tags: list[str | Enum], prefix: str = "", responses: dict[int | str, dict[str, Any]] | None = API_ERRORS
) -> APIRouter:
    """A router whose every route refuses query parameters it does not declare (the API contract, README) and
    documents the contract's error responses."""
    return APIRouter(prefix=prefix, tags=tags, responses=responses, dependencies=[Depends(reject_unknown_query)])


def mount_routes(app: FastAPI, router: APIRouter) -> None:
    """Add a router's routes to the app as the router built them.

    Not `include_router`: it declares every route a second time (APIRoute's constructor again: the dependency
    analysis and a pydantic TypeAdapter for each parameter and response), 46 routes that the router modules had
    already built on import: `create_app()` took 62-107 ms of process time here for that (its gc.freeze apart),
    3-4 ms now, part of ChatFunction's cold start and of ApiFunction's first request (python -m bench.coldstart).
    The routers' prefix, tags, responses and dependencies are in each route already. One difference: a route
    built by a router reads dependency overrides from that router, so `app.dependency_overrides` does not reach
    it (nothing uses it: tests give the app their own container).
    """
    app.router.routes.extend(router.routes)
