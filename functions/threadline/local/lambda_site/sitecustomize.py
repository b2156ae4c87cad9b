"""Lambda's read-only filesystem in each Python process the local runtime starts for a function.

Python imports `sitecustomize` from its path at startup, before any other code runs; the local runtime puts this
folder last on the function's PYTHONPATH with two variables that name the folders a function may write to
(Lambda's /tmp) and those it may not even inside them (its code and layers). So the check covers every function
alike: the worker that imports a Handler (local/worker.py) and ChatFunction's `run.sh`, whose `python3 -m
uvicorn` the web adapter starts (local/web_adapter.py). The variables and this folder are then taken out of
os.environ and sys.path, so the function's code sees the environment Lambda gives it and nothing of this.

Standard library only: the packaged code (`threadline invoke --package`) has no threadline.local.
"""

from __future__ import annotations

import errno
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

WRITABLE = "_THREADLINE_LOCAL_WRITABLE"
READ_ONLY = "_THREADLINE_LOCAL_READ_ONLY"

# Audit events that change the filesystem, and the positions of the paths they change.
_WRITES = {
    "os.mkdir": (0,),
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.rename": (0, 1),
    "os.link": (1,),
    "os.symlink": (1,),
    "os.truncate": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.utime": (0,),
    "shutil.rmtree": (0,),
}
_OPEN_WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def read_only_filesystem(writable: tuple[str, ...], read_only: tuple[str, ...] = ()) -> None:
    """Make this process's file writes fail outside `writable` as they fail in Lambda, where everything but
    /tmp is read-only (the code in /var/task, the layers in /opt): OSError EROFS, "Read-only file system".
    `read_only` (the function's code and layer folders) stays read-only even inside a writable folder, as a
    checkout under /tmp would otherwise be.

    An audit hook (PEP 578) sees every open for writing and every os-level change Python code makes; native
    code writing on its own (a C library) is not seen. Bytecode caches (__pycache__) are let through: in
    Lambda their writes fail silently and every cold start compiles its imports, which bench.coldstart
    --no-bytecode measures; here failing them would only slow every start.
    """
    roots = tuple(Path(root).resolve() for root in writable)
    shipped = tuple(Path(root).resolve() for root in read_only)

    def refused(path: object) -> bool:
        if not isinstance(path, str | bytes | os.PathLike):
            return False  # a file descriptor, already open
        where = Path(os.fsdecode(path)).resolve()
        if "__pycache__" in where.parts:
            return False
        inside = any(where.is_relative_to(root) for root in roots)
        return not inside or any(where.is_relative_to(root) for root in shipped)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":  # (path, mode, flags): flags are the os.open flags, from open() and os.open() alike
            targets: tuple[object, ...] = (args[0],) if isinstance(args[2], int) and args[2] & _OPEN_WRITES else ()
        elif event in _WRITES:
            targets = tuple(args[i] for i in _WRITES[event])
        else:
            return
        for target in targets:
            if refused(target):
                raise OSError(errno.EROFS, "Read-only file system", os.fsdecode(target))  # type: ignore[arg-type]

    sys.addaudithook(hook)


def _folders(name: str) -> tuple[str, ...]:
    return tuple(filter(None, os.environ.pop(name, "").split(os.pathsep)))


def _leave() -> None:
    """Take this folder out of sys.path and PYTHONPATH, then run the sitecustomize it hid, if any."""
    here = Path(__file__).resolve().parent

    def other(entry: str) -> bool:
        return Path(entry or ".").resolve() != here

    sys.path[:] = [entry for entry in sys.path if other(entry)]
    kept = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry and other(entry)]
    if kept:
        os.environ["PYTHONPATH"] = os.pathsep.join(kept)
    else:
        os.environ.pop("PYTHONPATH", None)
    hidden = importlib.machinery.PathFinder.find_spec("sitecustomize", sys.path)
    if hidden is not None and hidden.loader is not None:
        hidden.loader.exec_module(importlib.util.module_from_spec(hidden))


_writable, _read_only = _folders(WRITABLE), _folders(READ_ONLY)
if _writable:
    read_only_filesystem(_writable, _read_only)
_leave()
