"""`threadline dev` from nothing: it serves /health, its demo key authenticates, and Ctrl-C or SIGTERM stops it all,
within 10 s, even with chats in flight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

import httpx
import psutil
import pytest

from tests.fixtures.processes import wait_until_answering
from threadline.local.moto_server import free_port
from threadline.local.postgres import stop_now

# Slow: the whole stack starts twice (migrations, deploy, demo docs embedded), minutes on two shared cores.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 600.0  # two shared, busy cores: the first start migrates, deploys the template and seeds the demo
STOP_S = 10.0


def _read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


# A newcomer's second shell: no database URL, no AWS endpoint and no AWS credentials.
_NOT_IN_A_NEWCOMERS_SHELL = ("DATABASE_URL", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def _mail_to(local_dir: Path, address: str, timeout_s: float = 15.0) -> list[dict[str, object]]:
    """`threadline mail` until it lists a message to `address` (the stack writes new mail twice a second)."""
    deadline = time.monotonic() + timeout_s
    while True:
        mail: list[dict[str, object]] = json.loads(_cli(local_dir, "mail"))
        if any(address in str(m["to"]) for m in mail) or time.monotonic() > deadline:
            return mail
        time.sleep(0.5)


class _Load:
    """Chats in flight while the stack is stopped: streams held open unread, and clients asking in a loop."""

    def __init__(self, url: str, project_id: str, key: str) -> None:
        self._url, self._project_id, self._key = url, project_id, key
        self._stop = threading.Event()
        self._stack = ExitStack()
        self.answered = 0

    def _request(self, client: httpx.Client, n: int) -> AbstractContextManager[httpx.Response]:
        return client.stream(
            "POST",
            f"/query/v1/projects/{self._project_id}/chat/stream/",
            json={"query": f"How do I reset my password? ({n})"},
            headers={"X-API-KEY": self._key},
        )

    def _ask_in_a_loop(self) -> None:
        with httpx.Client(base_url=self._url, timeout=30) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                try:
                    with self._request(client, n) as response:
                        for _ in response.iter_lines():
                            pass
                    self.answered += 1
                except httpx.HTTPError:
                    return

    def start(self, held: int = 3, looping: int = 2) -> None:
        for n in range(held):
            client = self._stack.enter_context(httpx.Client(base_url=self._url, timeout=30))
            response = self._stack.enter_context(self._request(client, n))
            next(response.iter_lines())  # the stream has begun; the rest is left unread, the connection open
        for _ in range(looping):
            threading.Thread(target=self._ask_in_a_loop, daemon=True).start()
        deadline = time.monotonic() + 60
        while self.answered < looping and time.monotonic() < deadline:
            time.sleep(0.1)

    def close(self) -> None:
        self._stop.set()
        try:
            self._stack.close()
        except httpx.HTTPError:
            pass


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
        # The demo hooks (ingesting README and docs/, minutes on two shared cores) have their own test
        # (tests/integration/rag/test_demo_docs.py); this one is about starting, serving and stopping.
        "--no-demo-setup",
    ]
    log = (tmp_path / "dev.log").open("wb")
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    yield process, local_dir, f"http://127.0.0.1:{port}"
    if process.poll() is None:
        process.kill()
        process.wait(10)
        stop_now(local_dir / "pg")  # a failed test leaves no server behind either
    log.close()


@pytest.mark.timeout(900)  # the first start migrates, deploys and embeds the demo docs on two shared cores
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_dev_serves_the_demo_and_a_stop_signal_ends_every_process_under_load(
    dev_stack: tuple[subprocess.Popen[bytes], Path, str], tmp_path: Path, stop_signal: signal.Signals
) -> None:
    process, local_dir, url = dev_stack

    # Given a fresh data folder, `threadline dev` starts
    wait_until_answering(f"{url}/health", process, tmp_path / "dev.log", STARTUP_S)

    # When the demo key it wrote is used, a schedule is fired and the mail listed from another process,
    # chats are kept in flight, and the stop signal is sent
    demo = _read_env(local_dir / "demo.env")
    me = httpx.get(f"{url}/query/v1/me/", headers={"X-API-KEY": demo["API_KEY"]}, timeout=10)
    fired = json.loads(_cli(local_dir, "fire", "ReportSchedule"))
    team_id = me.json()["team_id"]
    _cli(local_dir, "admin", "report-settings", team_id, "--recipients", "ops@example.com")
    reported = json.loads(_cli(local_dir, "report", "--now", "--team", team_id))
    mail = _mail_to(local_dir, "ops@example.com")
    load = _Load(url, demo["PROJECT_ID"], demo["API_KEY"])
    load.start()
    started = psutil.Process(process.pid).children(recursive=True)
    # The embedded Postgres daemonizes, so it is not a child: find it through its pid file.
    postmaster = psutil.Process(int((local_dir / "pg" / "postmaster.pid").read_text().splitlines()[0]))
    signalled = time.monotonic()
    process.send_signal(stop_signal)
    try:
        exit_code = process.wait(60)
    finally:
        stopped_s = time.monotonic() - signalled
        load.close()

    # Then the key authenticated for the demo project, and within 10 s the stack, its children and Postgres are gone
    assert demo["THREADLINE_URL"] == url
    assert me.status_code == 200
    assert me.json()["id"] == demo["PROJECT_ID"]
    assert load.answered >= 2
    # 0: the orderly stop ended in time; 1: the deadline ended what was left (and said where it hung)
    log = (tmp_path / "dev.log").read_text()
    assert exit_code == 0 or (exit_code == 1 and "did not stop within" in log), log[-6000:]
    assert stopped_s <= STOP_S, f"stopped after {stopped_s:.1f} s"
    assert fired["schedule"].endswith("ReportSchedule") and fired["error"] is None
    assert [r["team_id"] for r in reported["sent"]] == [team_id]
    assert any("ops@example.com" in str(m["to"]) for m in mail)
    assert not (local_dir / "dev.json").exists()
    output = (tmp_path / "dev.log").read_text()
    assert f'curl -s -H "X-API-KEY: {demo["API_KEY"]}" {url}/query/v1/me/' in output
    _, alive = psutil.wait_procs([*started, postmaster], timeout=max(0.1, STOP_S - stopped_s))
    assert alive == []
    assert not (local_dir / "pg" / "postmaster.pid").exists()
