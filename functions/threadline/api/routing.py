"""Routers of the API contract, and how the app adds their routes: each module's on the first request for it."""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from enum import Enum
from types import ModuleType
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from threadline import startup
from threadline.api.deps import reject_unknown_query
from threadline.api.errors import API_ERRORS
from threadline.api.routers import ROUTES

PACKAGE = "threadline.api.routers"
startup.imported_later(*(f"{PACKAGE}.{name}" for name in ROUTES))


def contract_router(
    *, tags: list[str | Enum], prefix: str = "", responses: dict[int | str, dict[str, Any]] | None = API_ERRORS
) -> APIRouter:
    """A router whose every route refuses query parameters it does not declare (the API contract, README) and
    documents the contract's error responses."""
    return APIRouter(prefix=prefix, tags=tags, responses=responses, dependencies=[Depends(reject_unknown_query)])


class LazyRouters:
    """The router modules' routes in an app, each module imported by the first request for one of its paths.

    Importing all fourteen took ~185 ms of ApiFunction's ~480 ms import here (`python -X importtime`, a quiet
    hour: their pydantic models and FastAPI's analysis of each route), and an execution environment serves few
    of them: ChatFunction the chat routes, an ApiFunction environment the resources its clients call. Which
    module serves a request is known from `routers.ROUTES` without importing any, for ~6 µs a request while some
    module is not loaded yet (one pattern per module; nothing once all are).

    Serving is unchanged. Before the app routes a request, every module not loaded yet with a path that the
    request's path matches, with or without its trailing slash (Starlette's redirect looks the other form up),
    is loaded, and its routes go where mounting every module at once put them, in that order. A module with no
    such path has no route that could answer the request, so the response is the one the whole table gives
    (tests/unit/test_routing.py compares them for every kind of outcome). The OpenAPI document's request loads
    every module; `load_all()` is for what reads the whole table otherwise (`App.openapi()` called directly,
    tests).
    """

    def __init__(self, app: FastAPI, table: Mapping[str, tuple[str, ...]] = ROUTES, package: str = PACKAGE) -> None:
        self._routes = app.router.routes
        # The routers' routes go here: after FastAPI's own (/openapi.json), before what is mounted later.
        self._start = len(self._routes)
        self._package = package
        self._table = dict(table)
        self._loaded: dict[str, list[BaseRoute]] = {}
        # One pattern per module for all its paths, matched against a path without its trailing slashes: a
        # parameter matches any one segment (every convertor's values are segments; `path` spans them).
        self._patterns = {
            name: re.compile("|".join(_path_pattern(path) for path in paths)) for name, paths in table.items()
        }
        # The OpenAPI document reads every route: its request loads every module, in the threadpool like any
        # other load (FastAPI's route would otherwise import them all in the event loop, through `App.openapi`).
        self._whole_table_at = {app.openapi_url} if app.openapi_url else set()

    @property
    def pending(self) -> bool:
        """Whether some module is not loaded yet."""
        return len(self._loaded) < len(self._table)

    def loaded(self) -> set[str]:
        """The modules loaded so far."""
        return set(self._loaded)

    def wanted(self, scope: Scope) -> list[str]:
        """The modules not loaded yet that have a path this request's path matches, either slash form (all of
        them for the OpenAPI document)."""
        path, root = scope["path"], scope.get("root_path", "")
        paths = {path}
        if root and path.startswith(root):  # Starlette routes the path below the root path
            paths.add(path[len(root) :])
        if paths & self._whole_table_at:
            return [name for name in self._table if name not in self._loaded]
        bare = {path.rstrip("/") for path in paths}
        return [
            name
            for name, pattern in self._patterns.items()
            if name not in self._loaded and any(pattern.fullmatch(path) for path in bare)
        ]

    async def load_for(self, scope: Scope) -> None:
        """Load the modules this request may need, importing them in the threadpool so that other requests
        keep being served meanwhile (a chat router's import is ~40 ms here)."""
        if wanted := self.wanted(scope):
            modules = await run_in_threadpool(self._import, wanted)
            self._add(modules)

    def load_all(self) -> None:
        """Load every module (in this thread)."""
        if names := [name for name in self._table if name not in self._loaded]:
            self._add(self._import(names))

    def _import(self, names: list[str]) -> dict[str, ModuleType]:
        with startup.late_imports():
            return {name: importlib.import_module(f"{self._package}.{name}") for name in names}

    def _add(self, modules: dict[str, ModuleType]) -> None:
        # In the event loop's thread (or the only one), so two requests that imported one module add it once.
        # The routes as the module's router built them, not `include_router`, which declares every route a
        # second time (APIRoute's constructor again: the dependency analysis and a TypeAdapter per parameter and
        # response; 62-107 ms for all of them here). A route built by a router reads dependency overrides from
        # that router, so `app.dependency_overrides` does not reach it (nothing uses it: tests give the app their
        # own container).
        fresh = {name: module for name, module in modules.items() if name not in self._loaded}
        if not fresh:
            return
        spliced = sum(map(len, self._loaded.values()))  # the routers' routes in the app so far
        self._loaded |= {name: module.router.routes for name, module in fresh.items()}
        routes = [route for name in self._table if name in self._loaded for route in self._loaded[name]]
        self._routes[self._start : self._start + spliced] = routes


def _path_pattern(path: str) -> str:
    """A route path's regular expression without its trailing slash, each parameter any one segment (a `path`
    parameter any run of them): it matches at least what the route's own expression does."""
    parts = re.split(r"(\{[^}]+\})", path.rstrip("/"))
    return "".join(
        (".*" if part.endswith(":path}") else "[^/]+") if part.startswith("{") else re.escape(part) for part in parts
    )


class LoadRouters:
    """ASGI middleware, innermost: loads the router modules a request may need before the app routes it."""

    def __init__(self, app: ASGIApp, routers: LazyRouters) -> None:
        self.app = app
        self._routers = routers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Load what the request needs (nothing once every module is loaded), then pass it on."""
        if scope["type"] == "http" and self._routers.pending:
            await self._routers.load_for(scope)
        await self.app(scope, receive, send)
