"""The embedded Postgres stops with the last process using it, even after a kill, and survives tightened folders."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import psycopg
import pytest

from threadline.local.postgres import start_embedded

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


def _in_a_process(data: Path, then: str) -> subprocess.CompletedProcess[str]:
    """Start the server on `data` in a new Python process, print its pid, then run `then` there."""
    code = (
        "import os, signal, sys; from pathlib import Path; from threadline.local.postgres import start_embedded; "
        f"url, server = start_embedded(Path({str(data)!r})); print(server.get_pid(), flush=True); {then}"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "functions")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def _postmaster(data: Path) -> psutil.Process | None:
    pid_file = data / "postmaster.pid"
    if not pid_file.exists():
        return None
    return psutil.Process(int(pid_file.read_text().splitlines()[0]))


def test_the_server_stops_with_its_last_user_after_a_kill_and_behind_a_tightened_folder(tmp_path: Path) -> None:
    # Given a data folder inside a folder only its owner may enter (as pytest leaves /tmp/pytest-of-<user>)
    private = tmp_path / "private"
    private.mkdir()
    data = private / "local" / "pg"

    # When a process starts the server and exits normally (a benchmark)
    exited = _in_a_process(data, "sys.exit(0)")
    after_exit = _postmaster(data)
    # and another starts it and is killed (a `make dev` killed with SIGKILL)
    killed = _in_a_process(data, "os.kill(os.getpid(), signal.SIGKILL)")
    orphan = _postmaster(data)
    private.chmod(0o700)
    # and this process starts it again, uses it, and stops it
    url, server = start_embedded(data)
    with psycopg.connect(url) as conn:
        answer = conn.execute("SELECT 1").fetchone()
    server.cleanup()

    # Then the first left nothing running, the killed one's server was reused, then stopped by the last user
    assert exited.returncode == 0, exited.stderr[-2000:]
    assert after_exit is None or not after_exit.is_running()
    assert killed.returncode == -signal.SIGKILL
    assert orphan is not None and orphan.pid == int(killed.stdout.split()[0])
    assert answer == (1,)
    orphan.wait(15)
    assert not orphan.is_running()
    assert not (data / "postmaster.pid").exists()
