"""`threadline dev` from nothing: it serves /health, its demo key authenticates, and Ctrl-C stops it all."""

from __future__ import annotations

import json
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

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 180.0


def _read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def _wait_for_health(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"threadline dev exited during startup:\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url}/health did not answer within {STARTUP_S}s")


# A newcomer's second shell: no database URL, no AWS endpoint and no AWS credentials.
_NOT_IN_A_NEWCOMERS_SHELL = ("DATABASE_URL", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def _cli(local_dir: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in _NOT_IN_A_NEWCOMERS_SHELL}
    env["LOCAL_DIR"] = str(local_dir)
    command = [str(Path(sys.executable).with_name("threadline")), *args]
    return subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True, timeout=120
    ).stdout


@pytest.fixture
def dev_stack(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, str]]:
    """`threadline dev` in a subprocess on free ports with its own data folder (embedded Postgres)."""
    local_dir = tmp_path / "local"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AWS_ENDPOINT_URL", "MOTO_PORT")}
    env["LOCAL_DIR"] = str(local_dir)
    command = [
        str(Path(sys.executable).with_name("threadline")),
        "dev",
        "--port",
        str(port),
        "--moto-port",
        str(free_port()),
    ]
    log = (tmp_path / "dev.log").open("wb")
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    yield process, local_dir, f"http://127.0.0.1:{port}"
    if process.poll() is None:
        process.kill()
        process.wait(10)
    log.close()


def test_dev_serves_the_demo_and_ctrl_c_stops_every_process(
    dev_stack: tuple[subprocess.Popen[bytes], Path, str], tmp_path: Path
) -> None:
    process, local_dir, url = dev_stack

    # Given a fresh data folder, `threadline dev` starts
    _wait_for_health(url, process, tmp_path / "dev.log")

    # When the demo key it wrote is used, a schedule is fired and the mail listed from another process,
    # and Ctrl-C is sent
    demo = _read_env(local_dir / "demo.env")
    me = httpx.get(f"{url}/query/v1/me/", headers={"X-API-KEY": demo["API_KEY"]}, timeout=10)
    fired = json.loads(_cli(local_dir, "fire", "ReportSchedule"))
    team_id = me.json()["team_id"]
    _cli(local_dir, "admin", "report-settings", team_id, "--recipients", "ops@example.com")
    reported = json.loads(_cli(local_dir, "report", "--now", "--team", team_id))
    mail = json.loads(_cli(local_dir, "mail"))
    started = psutil.Process(process.pid).children(recursive=True)
    # The embedded Postgres daemonizes, so it is not a child: find it through its pid file.
    postmaster = psutil.Process(int((local_dir / "pg" / "postmaster.pid").read_text().splitlines()[0]))
    process.send_signal(signal.SIGINT)
    exit_code = process.wait(60)

    # Then the key authenticated for the demo project, and the stack, its children and Postgres are gone
    assert demo["THREADLINE_URL"] == url
    assert me.status_code == 200
    assert me.json()["id"] == demo["PROJECT_ID"]
    assert exit_code == 0
    assert fired["schedule"].endswith("ReportSchedule") and fired["error"] is None
    assert [r["team_id"] for r in reported["sent"]] == [team_id]
    assert any("ops@example.com" in str(m) for m in mail)
    assert not (local_dir / "dev.json").exists()
    output = (tmp_path / "dev.log").read_text()
    assert f'curl -s -H "X-API-KEY: {demo["API_KEY"]}" {url}/query/v1/me/' in output
    _, alive = psutil.wait_procs([*started, postmaster], timeout=15)
    assert alive == []
    assert not (local_dir / "pg" / "postmaster.pid").exists()
