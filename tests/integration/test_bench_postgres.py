"""A benchmark that ran on an embedded Postgres leaves no server running after it exits."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from threadline.local.postgres import stop_now

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


def postgres_processes_under(folder: Path) -> list[psutil.Process]:
    """Every postgres process whose command line names a path under `folder` (its `-D` data folder).

    Found by folder, never by name alone: other engineers run Postgres servers on this machine.
    """
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and any(str(folder) in part for part in cmdline):
            found.append(process)
    return found


@pytest.fixture
def bench_tmp() -> Iterator[Path]:
    """A temporary folder the benchmark keeps its embedded data in (as TMPDIR); any server left there is stopped.

    Under the system temporary folder rather than pytest's: pytest tightens /tmp/pytest-of-<user> to 0700 at
    each session start, which would lock out a server running as another user (see local/postgres.py).
    """
    folder = Path(tempfile.mkdtemp(prefix="tlpgleft"))
    yield folder
    for pid_file in folder.rglob("postmaster.pid"):
        stop_now(pid_file.parent, timeout_s=5.0)
    shutil.rmtree(folder, ignore_errors=True)


def _bench_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BENCH_DATABASE_URL")}
    env["TMPDIR"] = str(tmp)  # where the embedded data goes (a temporary folder, or the store when run as root)
    return env


def _bench(module: str, *args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env=_bench_env(tmp),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.timeout(320)
def test_bench_reports_stops_its_server_and_keeps_its_data_for_reuse(bench_tmp: Path) -> None:
    # Given an embedded data folder of the reports benchmark
    data = bench_tmp / "bench-pg"
    size = ["--threads", "30", "--projects", "2", "--days", "14", "--samples", "5", "--data-dir", str(data)]

    # When it runs at a tiny size and exits, then runs again reusing that database
    first = _bench("bench.reports", *size, tmp=bench_tmp)
    after_first = postgres_processes_under(bench_tmp)
    second = _bench("bench.reports", *size, "--reuse", tmp=bench_tmp)

    # Then each run measured, the second on the first's data, and no postgres process is left for the folder
    assert first.returncode == 0, first.stderr[-3000:]
    assert "build weekly reports" in first.stdout
    assert after_first == []
    assert second.returncode == 0, second.stderr[-3000:]
    assert "reusing database bench_reports_30_2_14" in second.stdout
    assert postgres_processes_under(bench_tmp) == []
    assert not (data / "postmaster.pid").exists()


@pytest.mark.slow  # 34 s on two shared cores: two app processes load the model before the first request
@pytest.mark.timeout(320)
def test_bench_classify_ttft_stops_its_server(bench_tmp: Path) -> None:
    # Given the time-to-first-token benchmark on an embedded server (its data under bench_tmp)
    # When it runs one request per mode and exits
    run = _bench("bench.classify_ttft", "--requests", "1", "--warmup", "0", tmp=bench_tmp)

    # Then it measured both modes, and no postgres process is left for its data folder
    assert run.returncode == 0, run.stderr[-3000:]
    assert "ratio enabled/disabled" in run.stdout
    assert postgres_processes_under(bench_tmp) == []
    assert list(bench_tmp.rglob("postmaster.pid")) == []


@pytest.mark.timeout(200)
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "sighup"])
def test_a_benchmark_ended_by_a_signal_stops_its_server(bench_tmp: Path, stop_signal: signal.Signals) -> None:
    # Given the time-to-first-token benchmark running on an embedded server, with far more requests to go
    log = (bench_tmp / "bench.log").open("w")
    bench = subprocess.Popen(
        [sys.executable, "-m", "bench.classify_ttft", "--requests", "100000", "--warmup", "0"],
        cwd=REPO_ROOT,
        env=_bench_env(bench_tmp),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while not postgres_processes_under(bench_tmp) and bench.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    running = postgres_processes_under(bench_tmp)
    time.sleep(2.0)  # into the migrations or the measuring

    # When it gets SIGTERM (`timeout`, a cancelled job) or SIGHUP (its terminal closed)
    bench.send_signal(stop_signal)
    code = bench.wait(60)
    log.close()

    # Then it ended with the signal's status and its server went with it
    assert running != [], (bench_tmp / "bench.log").read_text()[-3000:]
    assert code == 128 + stop_signal, (bench_tmp / "bench.log").read_text()[-3000:]
    assert postgres_processes_under(bench_tmp) == []
