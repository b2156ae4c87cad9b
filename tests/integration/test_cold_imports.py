"""Cold start, guarded by structure: a handler module imports only what its function uses, and the garbage
collector paused for its imports runs again once they are done (threadline/startup.py).

Importing every adapter for every function made each handler take 1.2-1.6 s to import (openai,
onnxruntime, boto3 clients); bench.coldstart measures the times, this test keeps the cause away.

Not a unit test: each handler needs a fresh interpreter (about 1 s of imports each, 95 s for all of them in
series with the machine shared), so they start together, once per module, and the tests read their results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from threadline.local.template import load_sam

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
# Loaded on first use only, by the functions that need them, never by importing a handler.
NEVER_AT_IMPORT = {"onnxruntime", "tokenizers", "openai", "boto3", "psycopg", "psycopg_pool", "pypdf", "httpx"}
# The MCP SDK and its protocol types (0.89 s of the API's import): loaded by the first /mcp request (api/reach.py).
MCP_SDK = {"mcp", "mcp_types"}
# The web stack belongs to the API's handler alone.
WEB = {"fastapi", "starlette", "mangum"}


def _handler_modules() -> dict[str, str]:
    resources = load_sam(REPO_ROOT / "template.yaml")["Resources"]
    handlers = [
        str(r["Properties"]["Handler"]) for r in resources.values() if r.get("Type") == "AWS::Serverless::Function"
    ]
    return {h.rpartition(".")[0]: h for h in handlers if h != "run.sh"}


def _in_fresh_interpreter(code: str, function_name: str | None = None) -> Any:
    """Run `code` in a new interpreter with the functions and the benchmarks on its path; what it printed, as JSON.

    With a function name, the interpreter is a Lambda environment as the template deploys it: the function's
    name, LAMBDA_TASK_ROOT (where Powertools enables the Tracer) and tracing on (`Tracing: Active`)."""
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "functions"), str(REPO_ROOT)])}
    for name in ("AWS_LAMBDA_FUNCTION_NAME", "LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED"):
        env.pop(name, None)
    if function_name:
        env |= {"AWS_LAMBDA_FUNCTION_NAME": function_name, "LAMBDA_TASK_ROOT": str(REPO_ROOT / "functions")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@dataclass(frozen=True)
class AfterImport:
    """A fresh Lambda-like interpreter after importing one handler module."""

    packages: set[str]  # the top-level packages loaded
    collector_running: bool  # gc.isenabled(): threadline/startup.py paused it for the imports
    frozen: int  # gc.get_freeze_count(): the startup objects taken out of the collector's walks


def _after_import(module: str) -> AfterImport:
    code = (
        f"import gc, importlib, json, sys; importlib.import_module({module!r});"
        "print(json.dumps([sorted(sys.modules), gc.isenabled(), gc.get_freeze_count()]))"
    )
    names, running, frozen = _in_fresh_interpreter(code, function_name=module)
    return AfterImport({name.partition(".")[0] for name in names}, running, frozen)


def test_every_template_handler_is_checked() -> None:
    # Given the template's functions
    modules = _handler_modules()

    # Then the Python handlers (all but ChatFunction's run.sh) are this test's scope, the known ones included
    assert all(m.startswith("threadline.handlers.") for m in modules)
    assert set(modules) >= {
        "threadline.handlers.api",
        "threadline.handlers.ingest",
        "threadline.handlers.backfill",
        "threadline.handlers.classify",
        "threadline.handlers.metrics",
        "threadline.handlers.imports",
        "threadline.handlers.report",
    }


@pytest.fixture(scope="module")
def loaded_by_handler() -> dict[str, AfterImport]:
    """Each handler module imported in its own fresh interpreter, all at once."""
    modules = sorted(_handler_modules())
    with ThreadPoolExecutor(max_workers=len(modules)) as pool:
        return dict(zip(modules, pool.map(_after_import, modules), strict=True))


@pytest.mark.parametrize("module", sorted(_handler_modules()))
def test_importing_a_handler_loads_no_model_driver_or_client(
    module: str, loaded_by_handler: dict[str, AfterImport]
) -> None:
    # Given a fresh interpreter, as a new Lambda execution environment is, with tracing on as deployed
    # When it imports the handler module
    loaded = loaded_by_handler[module].packages

    # Then no model runtime, LLM SDK, AWS SDK client or database driver came with it, nor anything X-Ray would
    # patch (its patch_all imported psycopg, httpx, requests and botocore's clients into every function)
    assert not loaded & NEVER_AT_IMPORT, sorted(loaded & NEVER_AT_IMPORT)
    assert not loaded & {"requests", "sqlite3"}, sorted(loaded & {"requests", "sqlite3"})
    assert not loaded & MCP_SDK, sorted(loaded & MCP_SDK)
    if module != "threadline.handlers.api":
        assert not loaded & WEB, sorted(loaded & WEB)


@pytest.mark.parametrize("module", sorted(_handler_modules()))
def test_a_handler_resumes_the_collector_its_imports_paused(
    module: str, loaded_by_handler: dict[str, AfterImport]
) -> None:
    # Given a fresh interpreter named as a Lambda function, which pauses the collector at `import threadline`
    # When it has imported the handler module
    after = loaded_by_handler[module]

    # Then the collector runs again, and what the imports made is frozen out of its walks
    assert after.collector_running
    assert after.frozen > 10_000


def test_the_collector_is_paused_only_in_a_lambda_environment() -> None:
    code = "import gc, json; import threadline; print(json.dumps(gc.isenabled()))"
    assert _in_fresh_interpreter(code, function_name="ApiFunction") is False
    assert _in_fresh_interpreter(code) is True


def test_the_app_factory_uvicorn_calls_resumes_the_collector() -> None:
    # Given ChatFunction's environment: uvicorn imports the app module, then calls create_app() (run.sh)
    code = (
        "import gc, json; from threadline.api.app import create_app; paused = not gc.isenabled(); create_app();"
        "print(json.dumps([paused, gc.isenabled(), gc.get_freeze_count()]))"
    )

    # When the process-wide app is built
    paused, running, frozen = _in_fresh_interpreter(code, function_name="ChatFunction")

    # Then the collector was paused for the imports and runs again, the startup objects frozen
    assert paused and running and frozen > 10_000


def test_the_container_loads_an_adapter_only_when_it_is_asked_for() -> None:
    # Given a fresh interpreter with the composition root imported
    code = (
        "import json, sys; from pathlib import Path; from threadline.bootstrap import Container;"
        "from threadline.settings import Settings;"
        "c = Container(Settings(database_url='postgresql://127.0.0.1:1/none'));"
        "before = sorted(sys.modules); c.alerts; after = sorted(sys.modules);"
        "print(json.dumps([before, after]))"
    )

    # When one Postgres adapter is built
    before, after = ({m.partition(".")[0] for m in names} for names in _in_fresh_interpreter(code))

    # Then the driver arrives with it, and the model and the LLM SDK still do not
    assert "psycopg" not in before and "psycopg" in after
    assert not after & {"onnxruntime", "openai"}


def test_building_the_app_leaves_the_mcp_sdk_to_the_first_mcp_request() -> None:
    # Given a fresh interpreter, as ChatFunction's environment is when run.sh starts the app
    code = (
        "import json, sys; from threadline.api.app import create_app; from threadline.bootstrap import Container;"
        "from threadline.settings import Settings;"
        "create_app(Container(Settings(database_url='postgresql://127.0.0.1:1/none')));"
        "print(json.dumps(sorted(sys.modules)))"
    )

    # When it builds the whole app, every route mounted
    loaded = {name.partition(".")[0] for name in _in_fresh_interpreter(code)}

    # Then the web stack is there and the MCP SDK is not (tests/integration/rag/test_mcp_server.py serves /mcp)
    assert "fastapi" in loaded
    assert not loaded & MCP_SDK, sorted(loaded & MCP_SDK)


def test_the_api_imports_a_router_module_with_the_first_request_for_it() -> None:
    # Given ApiFunction's environment with its handler imported and its app built, startup objects frozen
    code = (
        "import gc, json, sys; import threadline.handlers.api; from starlette.testclient import TestClient;"
        "from threadline.api.app import create_app; from threadline.bootstrap import Container;"
        "from threadline.settings import Settings;"
        "app = create_app(Container(Settings(database_url='postgresql://127.0.0.1:1/none')));"
        "routers = lambda: sorted(m for m in sys.modules if m.startswith('threadline.api.routers.'));"
        "built, frozen = routers(), gc.get_freeze_count();"
        "status = TestClient(app).get('/query/v1/threads/0b6e1d7a-3c2f-4e9b-8a1d-5f4c3b2a1e01/').status_code;"
        "print(json.dumps([built, routers(), status, gc.isenabled(), frozen, gc.get_freeze_count()]))"
    )

    # When the first request arrives, for a thread
    built, after, status, running, frozen, frozen_after = _in_fresh_interpreter(code, "ApiFunction")

    # Then no router module came with the app, the two that route a thread's path came with the request (which
    # got its answer: 401, no key), and what they made is frozen like the startup's, the collector running
    assert built == []
    assert after == ["threadline.api.routers.chat", "threadline.api.routers.thread_labels"]
    assert status == 401
    assert running and frozen_after > frozen > 10_000


def test_the_cold_start_benchmark_starts_each_child_with_the_standard_library_only() -> None:
    # Given a fresh interpreter, as each of bench.coldstart's children is before its clock starts
    code = (
        "import json, sys; before = set(sys.modules); import bench.coldstart;"
        "print(json.dumps(sorted({m.partition('.')[0] for m in set(sys.modules) - before})))"
    )

    # When it imports the benchmark's module (the child runs `python -m bench.coldstart --child`)
    loaded = set(_in_fresh_interpreter(code))

    # Then nothing but the standard library came with it: what a handler imports is timed, not preloaded
    assert loaded - set(sys.stdlib_module_names) == {"bench"}


# What each traced library looks like once X-Ray has patched it (aws_xray_sdk.ext.*.patch).
_PATCHED_STATE = (
    "import json, sys; import threadline.handlers.metrics; from aws_xray_sdk.core import patcher;"
    "patched_at_import = sorted(patcher._PATCHED_MODULES);"
    "import boto3, httpx, psycopg, openai, botocore.client;"
    "print(json.dumps([patched_at_import, sorted(patcher._PATCHED_MODULES),"
    " type(botocore.client.BaseClient._make_api_call).__name__, type(psycopg.connect).__name__,"
    " [c.__module__ for c in openai.DefaultHttpxClient.__mro__]]))"
)


def test_a_traced_library_is_patched_on_its_first_import_and_not_before() -> None:
    # Given a Lambda environment with tracing on, the handler imported (nothing patched yet)
    # When the function's work imports the AWS SDK, the LLM SDK and the database driver
    at_import, patched, api_call, connect, llm_client = _in_fresh_interpreter(_PATCHED_STATE, "MetricsFunction")

    # Then AWS calls and the LLM SDK's HTTP client (which subclasses the instrumented httpx client, since httpx
    # was patched before openai) were patched as they arrived; Postgres connections are left as they are
    # (threadline/observability.py says why)
    assert at_import == []
    assert patched == ["botocore", "httpx"]
    assert api_call == "BoundFunctionWrapper" and "FunctionWrapper" not in connect, (api_call, connect)
    assert "aws_xray_sdk.ext.httpx.patch" in llm_client


def test_nothing_is_patched_where_tracing_is_off() -> None:
    # Given an interpreter outside Lambda (the tests, the CLI): Powertools disables the Tracer
    # When the same libraries are imported
    at_import, patched, api_call, connect, llm_client = _in_fresh_interpreter(_PATCHED_STATE)

    # Then none of them is wrapped
    assert at_import == [] and patched == []
    assert "FunctionWrapper" not in api_call and "FunctionWrapper" not in connect, (api_call, connect)
    assert "aws_xray_sdk.ext.httpx.patch" not in llm_client


def _openapi_after(first: str) -> Any:
    """In ApiFunction's environment: import `first`, then the handler; whether FastAPI's OpenAPI models were built
    by then, whether a model defined afterwards builds at once, and the app's OpenAPI document."""
    code = (
        f"import json; import {first}; import threadline.handlers.api; import fastapi.openapi.models as models;"
        "from pydantic import BaseModel; from threadline.api.app import create_app; from threadline.bootstrap"
        " import Container; from threadline.settings import Settings;"
        "built = models.OpenAPI.__pydantic_complete__;"
        "later = type('Later', (BaseModel,), {'__annotations__': {'a': int}}).__pydantic_complete__;"
        "app = create_app(Container(Settings(database_url='postgresql://127.0.0.1:1/none')));"
        "print(json.dumps([built, later, app.openapi()]))"
    )
    return _in_fresh_interpreter(code, "ApiFunction")


def test_the_openapi_models_build_on_first_use_and_nothing_else_is_deferred() -> None:
    # Given the API's handler imported as ApiFunction imports it (threadline/api/__init__.py imports FastAPI),
    # and the same with FastAPI imported before it, as nothing deferred
    deferred_built, later_built, spec = _openapi_after("json")
    eager_built, _, eager_spec = _openapi_after("fastapi")

    # Then the handler's import left FastAPI's OpenAPI models unbuilt, a model defined afterwards builds at once
    # as pydantic's default says, and the document they build on first use is the one built eagerly
    assert deferred_built is False and eager_built is True
    assert later_built is True
    assert len(spec["paths"]) > 20 and spec == eager_spec
