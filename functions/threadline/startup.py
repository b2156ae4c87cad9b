"""An execution environment's init: the cyclic garbage collector paused while a function's modules load, then
what they made frozen out of its walks.

Importing a handler makes 135,000-185,000 tracked objects (pydantic's validators, FastAPI's routes, botocore's
models); the collector's passes walked them again and again while they loaded: with it paused, the API
handler's import took ~190 ms less of its ~2 s here (medians of ten fresh interpreters each way,
alternated). Nothing made at import is garbage worth collecting (a full pass afterwards found ~380 objects,
42 KB), and everything it made lives as long as the environment, so it is frozen (gc.freeze) rather than walked
by every later full collection.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager

_paused = False
# Modules a process imports on demand after its startup (a router module on the first request for one of its
# paths, the MCP server on the first /mcp request), named where that loading is set up. The package check
# (infra/build/checks.py) imports them beside each handler from the artifact alone, so one that cannot import
# there fails the build rather than a request in AWS.
LATER: set[str] = set()


def pause() -> None:
    """Pause the collector if this process is a Lambda execution environment (threadline/__init__.py calls it,
    so it runs before any of a handler's imports); `complete()` resumes it."""
    global _paused
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and gc.isenabled():
        gc.disable()
        _paused = True


def complete() -> None:
    """The function's modules are loaded: freeze what exists and resume the collector `pause()` stopped.

    Every handler module calls it after its imports, and so does the app factory uvicorn calls (ChatFunction);
    outside a Lambda environment (tests, the CLI) it does nothing. tests/integration/test_cold_imports.py
    checks that importing any handler of template.yaml leaves the collector running.
    """
    global _paused
    if _paused:
        gc.freeze()
        gc.enable()
        _paused = False


def imported_later(*modules: str) -> None:
    """Name modules this process may import on demand (`LATER`)."""
    LATER.update(modules)


@contextmanager
def late_imports() -> Iterator[None]:
    """Modules an environment loads after its startup, on the first request that needs them (a router, the MCP
    SDK): the collector paused while they load, as it is for the startup's, and what they made frozen with it.

    Only in a process whose startup froze its objects (the process-wide app: api/app.py); elsewhere (tests, the
    CLI) the block runs as it is. Two overlapping blocks (two threads) pause the collector once: the first to
    end resumes it, and the other's objects are walked like any others until the next block freezes them.
    """
    if not gc.get_freeze_count():
        yield
        return
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if paused:
            gc.enable()
