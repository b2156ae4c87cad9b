"""`threadline dev` killed with SIGKILL, started again, then stopped with Ctrl-C: no Postgres is left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from threadline.local.moto_server import free_port
from threadline.local.postgres import stop_now

# Slow: the stack starts twice (migrations, template deploy), about 15 s each on two shared cores.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 300.0


def _postgres_of(data: Path) -> list[psutil.Process]:
    """The postmaster of `data`: the postgres process whose command line names it (never another engineer's)."""
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "postgres" and str(data) in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found


class _Stacks:
    """Starts `threadline dev` on free ports over one data folder; ends whatever a failed test left."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.local_dir = tmp_path / "local"
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str) -> subprocess.Popen[bytes]:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AWS_ENDPOINT_URL", "MOTO_PORT")}
        env["LOCAL_DIR"] = str(self.local_dir)
        command = [str(Path(sys.executable).with_name("threadline")), "dev", "--port", str(port)]
        command += ["--moto-port", str(free_port()), "--no-demo-setup"]
        log = self.tmp_path / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.started.append(process)
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            assert process.poll() is None, f"{name} exited during startup:\n{log.read_text()[-3000:]}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    return process
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"{name} did not serve /health within {STARTUP_S} s")

    def close(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
            process.wait(10)
        stop_now(self.local_dir / "pg", timeout_s=5.0)


@pytest.fixture
def stacks(tmp_path: Path) -> Iterator[_Stacks]:
    """`threadline dev` runs of one data folder; none outlives the test, nor its Postgres."""
    started = _Stacks(tmp_path)
    yield started
    started.close()


@pytest.mark.timeout(700)
def test_ctrl_c_after_a_killed_run_stops_the_postgres_the_restart_reused(stacks: _Stacks) -> None:
    # Given a stack killed with SIGKILL, whose parent has not reaped it yet (a zombie), its Postgres left running
    first = stacks.start("first")
    data = (stacks.local_dir / "pg").resolve()
    orphan = _postgres_of(data)
    first.kill()
    # When the stack is started again on the same folder and stopped with Ctrl-C
    second = stacks.start("second")
    reused = _postgres_of(data)
    second.send_signal(signal.SIGINT)
    code = second.wait(30)
    first.wait(10)

    # Then the restart reused the killed run's server, and stopping it left no postgres process for the folder
    assert orphan != []
    assert {p.pid for p in reused} >= {p.pid for p in orphan}
    assert code == 0, (stacks.tmp_path / "second.log").read_text()[-3000:]
    _, alive = psutil.wait_procs(orphan, timeout=5)
    assert alive == []
    assert _postgres_of(data) == []
    assert not (data / "postmaster.pid").exists()
