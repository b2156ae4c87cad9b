"""Powertools Logger, Tracer and Metrics, created once for the whole package.

X-Ray: template.yaml turns tracing on for every function (`Tracing: Active`), and in Lambda
(LAMBDA_TASK_ROOT set) the Tracer is enabled. Its default, `auto_patch`, runs the X-Ray SDK's `patch_all()`
when the Tracer is created, that is while a handler module imports: it imports every library it can patch
(botocore's clients, httpx, psycopg with its pool, requests, sqlite3) to wrap them, which undid the lazy
imports of bootstrap.py in every traced environment. Here the Tracer patches nothing up front; each library
whose calls leave the process is patched when something first imports it, so a function pays for a library
only when it uses it, and its calls are traced all the same (test_cold_imports checks both).

Not patched: psycopg. The SDK's psycopg patch wraps every connection in a proxy and records only
`cursor().execute()`, while the SQL here runs through `Connection.execute`, pipelines and COPY on the
connection itself (adapters/postgres/db.py): it traced none of it (ImportFunction run traced with it on, as
in tests/integration/metrics/test_local_cloud.py, sent no SQL document) and put a proxy in front of every
connection.
Database time shows as the handler subsegment's time outside its AWS and HTTP calls.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from aws_lambda_powertools import Logger, Metrics, Tracer

# The module whose first import patches it -> the X-Ray SDK's name for the library: AWS calls (botocore's
# clients: `import aws_lambda_powertools` already imports the bare botocore package, and every client comes from
# a botocore.session, whose import completes botocore.client's; a hook on botocore.client itself runs before the
# package has its `client` attribute, which the SDK's patch reads) and the LLM (httpx, patched before the openai
# SDK subclasses its Client).
TRACED_ON_IMPORT = {"botocore.session": "botocore", "httpx": "httpx"}

logger = Logger(service="threadline")
tracer = Tracer(service="threadline", auto_patch=False)
metrics = Metrics(namespace="Threadline", service="threadline")


def _patch_on_first_import() -> None:
    """Register an import hook per traced library; none when tracing is off (outside Lambda, or disabled)."""
    if tracer.disabled:
        return
    import wrapt  # the X-Ray SDK's own patching library, already imported by the enabled Tracer

    for module, library in TRACED_ON_IMPORT.items():
        # Runs at once when the module is already imported, else right after its first import completes.
        wrapt.register_post_import_hook(_patcher(library), module)


def _patcher(library: str) -> Callable[[ModuleType], None]:
    def patch(_module: ModuleType) -> None:
        tracer.patch([library])

    return patch


_patch_on_first_import()
