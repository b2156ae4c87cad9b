"""The embedded Postgres stops with the last process using it, even after a kill, and survives tightened folders."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from threadline.local.postgres import start_embedded, stop_now, stop_owned

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


def _started_in_a_process(data: Path, then: str) -> subprocess.Popen[str]:
    """Like `_in_a_process`, but not waited for: once it has printed the pid, the caller decides when to reap it."""
    code = (
        "import os, signal, sys; from pathlib import Path; from threadline.local.postgres import start_embedded; "
        f"url, server = start_embedded(Path({str(data)!r}), keep_running=True); print(server.get_pid(), flush=True); "
        f"{then}"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "functions")}
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    assert process.stdout is not None
    process.stdout.readline()  # the server is up and this process is in its handle list
    return process


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Path]:
    """A data folder whose server, if a failed test left it running, is stopped after the test."""
    folder = tmp_path / "local" / "pg"
    yield folder
    stop_now(folder, timeout_s=5.0)


def test_a_killed_process_not_yet_reaped_does_not_keep_the_server_up(data: Path) -> None:
    # Given a process that started the server and was killed, and that its parent has not reaped (a zombie)
    killed = _started_in_a_process(data, "os.kill(os.getpid(), signal.SIGKILL)")
    orphan = _postmaster(data)
    deadline = time.monotonic() + 10
    while psutil.Process(killed.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.05)
    zombie = psutil.Process(killed.pid).status()

    # When this process starts the server again and lets go of it as its last user
    _, server = start_embedded(data)
    server.cleanup()
    killed.wait(10)

    # Then the zombie did not count: the server stopped
    assert zombie == psutil.STATUS_ZOMBIE
    assert orphan is not None
    orphan.wait(15)
    assert not orphan.is_running()
    assert not (data / "postmaster.pid").exists()


def test_its_owner_stops_the_server_while_a_command_beside_it_still_holds_a_handle(data: Path) -> None:
    # Given a CLI-like process holding the server (keep_running) and waiting, as a command beside `make dev` does
    holder = _started_in_a_process(data, "sys.stdin.read()")
    try:
        # When the owner (`make dev`, a benchmark) starts it too, then stops it
        url, server = start_embedded(data)
        postmaster = _postmaster(data)
        with psycopg.connect(url) as conn:
            answer = conn.execute("SELECT 1").fetchone()
        stop_owned(server)

        # Then the server is gone although the holder still runs, and a new start in this process works
        assert answer == (1,)
        assert postmaster is not None
        postmaster.wait(15)
        assert holder.poll() is None
        assert not (data / "postmaster.pid").exists()
        url, server = start_embedded(data)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 2").fetchone() == (2,)
        stop_owned(server)
        assert not (data / "postmaster.pid").exists()
    finally:
        holder.kill()
        holder.wait(10)
