"""The API contract (README, "API contract"), checked over the app's routes and OpenAPI document.

A new /query/v1 route that breaks a rule fails here: a bare-array list, a list without limit/cursor, an
undocumented error, a request body that accepts unknown fields, a time parameter without a zone, a write
without a documented body, or a route that ignores unknown query parameters.
"""

from __future__ import annotations

import inspect
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.dependencies.utils import get_flat_dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from threadline.api.app import create_app
from threadline.api.deps import get_principal, reject_unknown_query
from threadline.api.models import RequestModel
from threadline.bootstrap import Container

API = "/query/v1/"
# GETs of one thing whose path does not end in an id: everything else a GET reaches without an id is a list.
SINGULAR = {"/query/v1/me/", "/query/v1/team/report-settings/", "/query/v1/projects/{project_id}/mcp-settings/"}
SINGULAR_SUFFIXES = ("/analytics/",)
ERRORS = ("401", "404", "422")
WRITES = ("post", "put", "patch")


@pytest.fixture(scope="module")
def app() -> FastAPI:
    app = create_app(cast(Container, object()))
    app.routers.load_all()  # the whole route table, not the modules that requests have needed so far
    return app


@pytest.fixture(scope="module")
def spec(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op) for path, ops in spec["paths"].items() if path.startswith(API) for method, op in ops.items()
    ]


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def is_list(path: str, method: str) -> bool:
    """A GET of a collection: its path does not end with an id and it is not one of the singular resources."""
    last = path.rstrip("/").rsplit("/", 1)[1]
    return (
        method == "get" and not last.startswith("{") and path not in SINGULAR and not path.endswith(SINGULAR_SUFFIXES)
    )


@pytest.mark.unit
def test_every_list_is_a_page_and_takes_limit_and_cursor(spec: dict[str, Any]) -> None:
    lists = [(path, op) for path, method, op in _operations(spec) if is_list(path, method)]
    assert len(lists) >= 9, "the contract test no longer finds the lists"
    for path, op in lists:
        # Given a list route, When its 200 response is read
        schema = _resolve(spec, op["responses"]["200"]["content"]["application/json"]["schema"])
        # Then it is a page of results with the next cursor, and it takes limit and cursor
        assert schema.get("type") == "object", path
        assert set(schema["properties"]) == {"results", "next_cursor"}, path
        assert schema["properties"]["results"]["type"] == "array", path
        params = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
        assert {"limit", "cursor"} <= params, path


@pytest.mark.unit
def test_no_route_answers_a_bare_array(spec: dict[str, Any]) -> None:
    for path, method, op in _operations(spec):
        for status, response in op["responses"].items():
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if schema is not None:
                assert _resolve(spec, schema).get("type") != "array", f"{method} {path} {status}"


@pytest.mark.unit
def test_every_route_documents_the_error_responses(spec: dict[str, Any]) -> None:
    for path, method, op in _operations(spec):
        for status in ERRORS:
            # Given a documented error, Then its body is the one error shape
            response = op["responses"].get(status)
            assert response is not None, f"{method} {path} lacks {status}"
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorPublic"}, f"{method} {path} {status}"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    return [r for value in node for r in _refs(value)] if isinstance(node, list) else []


def test_every_reference_resolves_and_the_error_shape_is_in_the_components(spec: dict[str, Any]) -> None:
    # Given the document (the error responses name ErrorPublic by reference; errors.document_error_schema adds it)
    # Then every $ref in it names a component, and the error body is {"error": {"code", "message", "details"?}}
    schemas = spec["components"]["schemas"]
    missing = sorted({r for r in _refs(spec) if r.rsplit("/", 1)[1] not in schemas})
    assert missing == []
    error = _resolve(spec, {"$ref": "#/components/schemas/ErrorPublic"})
    assert error["required"] == ["error"]
    detail = _resolve(spec, error["properties"]["error"])
    assert sorted(detail["required"]) == ["code", "message"]
    assert set(detail["properties"]) == {"code", "message", "details"}


@pytest.mark.unit
def test_every_write_documents_its_body_and_json_bodies_forbid_unknown_fields(spec: dict[str, Any]) -> None:
    for path, method, op in _operations(spec):
        if method not in WRITES:
            continue
        # Given a write, Then it says what its body is (uploads included)
        content = op.get("requestBody", {}).get("content", {})
        assert content, f"{method} {path} documents no request body"
        json_body = content.get("application/json")
        if json_body is not None:
            # And a JSON body refuses fields it does not know
            schema = _resolve(spec, json_body["schema"])
            assert schema.get("additionalProperties") is False, f"{method} {path} accepts unknown fields"


@pytest.mark.unit
def test_uploads_describe_each_body_they_accept(spec: dict[str, Any]) -> None:
    documents = spec["paths"]["/query/v1/projects/{project_id}/documents/"]["post"]["requestBody"]["content"]
    imports = spec["paths"]["/query/v1/projects/{project_id}/interactions/import/"]["post"]["requestBody"]["content"]
    assert set(documents) == {"multipart/form-data", "application/json"}
    assert documents["multipart/form-data"]["schema"]["properties"]["file"]["format"] == "binary"
    assert set(imports) == {"multipart/form-data", "text/csv"}


@pytest.mark.unit
def test_every_time_parameter_requires_a_zone(app: FastAPI, spec: dict[str, Any]) -> None:
    checked = 0
    for route in app.routes:
        if not isinstance(route, APIRoute) or not route.path.startswith(API):
            continue
        for param in get_flat_dependant(route.dependant).query_params:
            schema = param.field_info.json_schema_extra or {}
            documented = next(
                (
                    p
                    for p in spec["paths"][route.path][next(iter(route.methods)).lower()].get("parameters", [])
                    if p["name"] == param.alias
                ),
                None,
            )
            text = str(documented) if documented else str(schema)
            if "date-time" not in text:
                continue
            # Given a time parameter, When it is given without a zone, Then it is refused
            _, errors = param.validate("2026-01-01T00:00:00", {}, loc=("query", param.alias))
            assert errors, f"{route.path} accepts a naive {param.alias}"
            checked += 1
    assert checked >= 6, "the contract test no longer finds the time parameters"


@pytest.mark.unit
def test_every_route_refuses_unknown_query_parameters(app: FastAPI) -> None:
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path.startswith(API):
            calls = [d.call for d in route.dependant.dependencies]
            assert reject_unknown_query in calls, route.path


@pytest.mark.unit
def test_every_json_body_is_a_request_model(app: FastAPI) -> None:
    # Given every route of the app that takes a JSON body
    routes = [r for r in app.routes if isinstance(r, APIRoute) and r.body_field is not None]
    # When their body models are read
    loose = sorted(
        f"{sorted(r.methods)[0]} {r.path}: {r.body_field.type_.__name__}"  # type: ignore[union-attr]
        for r in routes
        if isinstance(r.body_field.type_, type)  # type: ignore[union-attr]
        and issubclass(r.body_field.type_, BaseModel)  # type: ignore[union-attr]
        and not issubclass(r.body_field.type_, RequestModel)  # type: ignore[union-attr]
    )
    # Then each derives from RequestModel: unknown fields and unstorable text (NUL) are refused at the edge
    assert routes, "the app takes no JSON body at all"
    assert loose == []


@pytest.mark.unit
def test_only_dependencies_that_block_run_in_the_threadpool(app: FastAPI) -> None:
    # Given every dependency of every route, however deep
    sync: set[Any] = set()

    def walk(dependant: Any) -> None:
        for sub in dependant.dependencies:
            call = sub.call
            # A dependency is a function or an object with a `__call__` (APIKeyHeader's is async).
            if not (inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(type(call).__call__)):
                sync.add(call)
            walk(sub)

    for route in app.routes:
        if isinstance(route, APIRoute):
            walk(route.dependant)
    # Then only authentication (a database read) is a sync dependency: FastAPI runs each sync one in its
    # threadpool, a thread hop on every request, so one that never blocks must be `async`
    assert sync == {get_principal}
