"""Soak: one `threadline dev` stack under sustained use, watched for growth and slowdown.

    python -m bench.soak                              # quick: 100 chats, 5 backfills
    python -m bench.soak --chats 2000 --backfills 100 # the issue's size

`threadline dev` runs in a subprocess on free ports with its own LOCAL_DIR (embedded Postgres, moto with
the template deployed, pollers, schedules, the mail writer), as `make dev` runs it. The client asks
`--chats` questions one at a time, each starting a new thread (so each is classified through the
ClassifyQueue and counted through the MetricsQueue), and measures the time to the first `token` event.
Spread over the run, it starts `--backfills` backfills through the API (each started once the one before
has ended: one runs per project at a time) and sends one mail through the stack's SES per backfill.

It prints the RSS of the dev process and all its children (the embedded Postgres daemonizes and is
printed apart), TTFT p50/p95 over the first and the last 10% of the chats and the ratio of the p95s, then
checks that every thread got a label, that every mail sent is readable (`threadline mail` and a parseable
.eml in the mail folder), how big moto's state dump is, and that SIGINT stops everything within 10 s.
Targets: RSS growth < 300 MB, last/first p95 <= 1.2, every thread labelled, every mail readable.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_string
from pathlib import Path

import boto3
import httpx
import psutil  # type: ignore[import-untyped]
from httpx_sse import connect_sse

from bench.labelling_support import REPO_ROOT, percentile
from threadline.local.moto_server import free_port
from threadline.local.postgres import stop_now
from threadline.settings import Settings

QUESTIONS = [
    "How do I start the local stack?",
    "How are threads labelled?",
    "What does a backfill do when a range fails?",
    "Where is sent mail written?",
    "How do I create an API key?",
    "What are the rollups for?",
]
STARTUP_S = 600.0
STOP_TARGET_S = 10.0
MB = 1024 * 1024


@dataclass
class Stack:
    """A running `threadline dev`: its process, URLs, demo key and data folder."""

    process: subprocess.Popen[bytes]
    url: str
    endpoint: str
    project_id: str
    key: str
    local_dir: Path
    log: Path

    def tree_rss(self) -> int:
        """RSS of the dev process and every process below it, in bytes."""
        root = psutil.Process(self.process.pid)
        total = 0
        for proc in [root, *root.children(recursive=True)]:
            try:
                total += int(proc.memory_info().rss)
            except psutil.NoSuchProcess:
                continue
        return total

    def postgres(self) -> psutil.Process | None:
        """The embedded Postgres's postmaster (a daemon, not a child of dev)."""
        pid_file = self.local_dir / "pg" / "postmaster.pid"
        return psutil.Process(int(pid_file.read_text().splitlines()[0])) if pid_file.exists() else None

    def postgres_rss(self) -> int:
        """RSS of the postmaster and its backends, in bytes."""
        postmaster = self.postgres()
        if postmaster is None:
            return 0
        return sum(int(p.memory_info().rss) for p in [postmaster, *postmaster.children(recursive=True)])


def _dev_env(local_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AWS_ENDPOINT_URL", "MOTO_PORT")}
    env["LOCAL_DIR"] = str(local_dir)
    return env


@contextmanager
def dev_stack(local_dir: Path, demo_setup: bool = True) -> Iterator[Stack]:
    """Start `threadline dev` and wait for /health; kill it on the way out if it is still running."""
    port, moto_port = free_port(), free_port()
    local_dir.mkdir(parents=True, exist_ok=True)
    log = local_dir.parent / "dev.log"
    command = [str(Path(sys.executable).with_name("threadline")), "dev", "--port", str(port)]
    command += [] if demo_setup else ["--no-demo-setup"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--moto-port", str(moto_port)],
            cwd=REPO_ROOT,
            env=_dev_env(local_dir),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_for_health(url, process, log)
            demo = dict(line.split("=", 1) for line in (local_dir / "demo.env").read_text().splitlines() if "=" in line)
            yield Stack(
                process, url, f"http://127.0.0.1:{moto_port}", demo["PROJECT_ID"], demo["API_KEY"], local_dir, log
            )
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(30)
                stop_now(local_dir / "pg")


def _wait_for_health(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"threadline dev exited during startup:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url}/health did not answer within {STARTUP_S:.0f} s")


def _ttft_ms(client: httpx.Client, stack: Stack, question: str) -> float:
    started = time.perf_counter()
    first: float | None = None
    with connect_sse(
        client,
        "POST",
        f"/query/v1/projects/{stack.project_id}/chat/stream/",
        json={"query": question},
        headers={"X-API-KEY": stack.key},
    ) as source:
        for event in source.iter_sse():
            if event.event == "token" and first is None:
                first = (time.perf_counter() - started) * 1000
            if event.event == "error":
                raise RuntimeError(event.data)
    if first is None:
        raise RuntimeError("no token event")
    return first


@dataclass
class Backfills:
    """Starts backfills one after another, each when asked, and sends one mail per start."""

    stack: Stack
    sender: str
    started: list[str] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)
    mail_ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _requests: queue.Queue[bool] = field(default_factory=queue.Queue)

    def request(self) -> None:
        """Ask for one more backfill (started once the previous one has ended)."""
        self._requests.put(True)

    def finish(self) -> None:
        """Let the worker end once every backfill asked for has been started and has ended."""
        self._requests.put(False)

    def run(self) -> None:
        """The worker's loop (a thread)."""
        ses = boto3.client(
            "ses",
            endpoint_url=self.stack.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",  # moto accepts any
            aws_secret_access_key="testing",
        )
        with httpx.Client(base_url=self.stack.url, timeout=60, headers={"X-API-KEY": self.stack.key}) as client:
            while self._requests.get():
                try:
                    self._one(client, ses)
                except Exception as exc:  # recorded and printed: one failed start must not end the soak
                    self.errors.append(f"{type(exc).__name__}: {exc}")

    def _one(self, client: httpx.Client, ses: object) -> None:
        path = f"/query/v1/projects/{self.stack.project_id}/backfills/"
        response = client.post(path, json={"scope": "unlabelled"})
        if response.status_code != 202:
            raise RuntimeError(f"backfill start answered {response.status_code}: {response.text[:200]}")
        backfill_id = response.json()["id"]
        self.started.append(backfill_id)
        sent = ses.send_email(  # type: ignore[attr-defined]
            Source=self.sender,
            Destination={"ToAddresses": ["soak@example.com"]},
            Message={
                "Subject": {"Data": f"soak backfill {len(self.started)}"},
                "Body": {"Text": {"Data": f"backfill {backfill_id} started"}},
            },
        )
        self.mail_ids.append(sent["MessageId"])
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            state = client.get(f"{path}{backfill_id}/").json()["state"]
            if state != "running":
                self.states[backfill_id] = state
                return
            time.sleep(0.5)
        raise RuntimeError(f"backfill {backfill_id} still running after 600 s")


def _unlabelled(client: httpx.Client, stack: Stack, timeout_s: float) -> tuple[int, int]:
    """(unlabelled threads, all threads) once nothing is left unlabelled or `timeout_s` has passed."""
    path = f"/query/v1/projects/{stack.project_id}/threads/"
    deadline = time.monotonic() + timeout_s
    while True:
        left = client.get(path, params={"unlabelled": "true", "limit": 200}).json()["results"]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(2.0)
    total, cursor = 0, None
    while True:
        page = client.get(path, params={"limit": 200, **({"cursor": cursor} if cursor else {})}).json()
        total += len(page["results"])
        cursor = page.get("next_cursor")
        if not cursor:
            return len(left), total


def _readable_mail(stack: Stack, ids: list[str]) -> tuple[int, float]:
    """How many of `ids` `threadline mail` lists and the mail folder holds as parseable .eml; and the CLI's time."""
    env = _dev_env(stack.local_dir)
    started = time.perf_counter()
    listed = subprocess.run(
        [str(Path(sys.executable).with_name("threadline")), "mail"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    elapsed = time.perf_counter() - started
    by_id = {m["id"]: m for m in json.loads(listed.stdout)}
    readable = 0
    for mail_id in ids:
        eml = stack.local_dir / "mail" / f"{mail_id}.eml"
        if mail_id in by_id and eml.is_file() and message_from_string(eml.read_text())["Subject"]:
            readable += 1
    return readable, elapsed


def _chat_in_a_loop(stack: Stack, stop: threading.Event) -> None:
    with httpx.Client(base_url=stack.url, timeout=60) as client:
        while not stop.is_set():
            try:
                _ttft_ms(client, stack, QUESTIONS[0])
            except (httpx.HTTPError, RuntimeError):
                return


def _stop(stack: Stack) -> tuple[float, list[psutil.Process]]:
    """SIGINT with chats in flight, then (seconds until dev exited, processes of the stack alive 10 s after it)."""
    stop = threading.Event()
    for _ in range(3):
        threading.Thread(target=_chat_in_a_loop, args=(stack, stop), daemon=True).start()
    time.sleep(1.0)
    processes = [psutil.Process(stack.process.pid), *psutil.Process(stack.process.pid).children(recursive=True)]
    postmaster = stack.postgres()
    signalled = time.monotonic()
    stack.process.send_signal(signal.SIGINT)
    try:
        stack.process.wait(60)
    except subprocess.TimeoutExpired:
        pass
    stopped_s = time.monotonic() - signalled
    stop.set()
    _, alive = psutil.wait_procs(
        [*processes, *([postmaster] if postmaster else [])], timeout=max(0.1, STOP_TARGET_S - stopped_s)
    )
    return stopped_s, alive


def _moto_state_mb(endpoint: str) -> float:
    return len(httpx.get(f"{endpoint}/moto-api/data.json", timeout=120).content) / MB


def _report(args: argparse.Namespace, ttfts: list[float], rss: list[tuple[int, int, int]]) -> None:
    tenth = max(1, len(ttfts) // 10)
    first, last = ttfts[:tenth], ttfts[-tenth:]
    ratio = percentile(last, 95) / percentile(first, 95)
    print(f"chats {len(ttfts)}, backfill starts {args.backfills}")
    print("RSS of `threadline dev` and its children (MB) [embedded Postgres, apart]:")
    for chats, tree, pg in rss:
        print(f"  after {chats:5d} chats: {tree / MB:8.1f}   [{pg / MB:7.1f}]")
    # The first sample is taken before the first backfill and classification have loaded their models; the
    # growth that matters is what the run adds once everything is loaded, from the end of its first 10%.
    growth = (rss[-1][1] - rss[1][1]) / MB
    print(f"  growth from the end of the first 10% to the end: {growth:+.1f} MB   (target < 300)")
    print(f"  growth from the first sample (before any model was loaded): {(rss[-1][1] - rss[0][1]) / MB:+.1f} MB")
    for name, values in (("first", first), ("last ", last)):
        p50, p95 = percentile(values, 50), percentile(values, 95)
        print(f"time to first token (ms), {name} {tenth} chats: p50 {p50:7.1f}  p95 {p95:7.1f}")
    print(f"  ratio last/first p95: {ratio:.2f}   (target <= 1.2)")


def run(args: argparse.Namespace, local_dir: Path) -> None:
    """Start the stack, drive it, print the figures, stop it."""
    sender = str(Settings.model_fields["report_sender"].default)
    with dev_stack(local_dir, demo_setup=not args.no_demo_docs) as stack:
        backfills = Backfills(stack, sender)
        worker = threading.Thread(target=backfills.run, name="backfills", daemon=True)
        worker.start()
        every = max(1, args.chats // max(1, args.backfills))
        ttfts: list[float] = []
        rss: list[tuple[int, int, int]] = []
        with httpx.Client(base_url=stack.url, timeout=120, headers={"X-API-KEY": stack.key}) as client:
            for i in range(args.warmup):
                _ttft_ms(client, stack, QUESTIONS[i % len(QUESTIONS)])
            rss.append((0, stack.tree_rss(), stack.postgres_rss()))
            for i in range(args.chats):
                if i % every == 0 and i // every < args.backfills:
                    backfills.request()
                ttfts.append(_ttft_ms(client, stack, f"{QUESTIONS[i % len(QUESTIONS)]} ({uuid.uuid4().hex[:6]})"))
                if (i + 1) % max(1, args.chats // 10) == 0:
                    rss.append((i + 1, stack.tree_rss(), stack.postgres_rss()))
            backfills.finish()
            worker.join()
            unlabelled, threads = _unlabelled(client, stack, timeout_s=300)
        rss.append((args.chats, stack.tree_rss(), stack.postgres_rss()))
        _report(args, ttfts, rss)
        succeeded = sum(state == "succeeded" for state in backfills.states.values())
        print(f"backfills started {len(backfills.started)}, succeeded {succeeded}, errors {backfills.errors[:3]}")
        print(f"threads labelled: {threads - unlabelled} of {threads}")
        readable, mail_s = _readable_mail(stack, backfills.mail_ids)
        print(f"mail readable: {readable} of {len(backfills.mail_ids)} (`threadline mail` took {mail_s:.1f} s)")
        print(f"moto state (/moto-api/data.json): {_moto_state_mb(stack.endpoint):.1f} MB")
        stopped_s, alive = _stop(stack)
        print(f"SIGINT: stopped in {stopped_s:.1f} s, processes left: {len(alive)}   (target <= 10 s, none)")


def main(argv: list[str] | None = None) -> None:
    """Run the soak at the given size and print its figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--chats", type=int, default=100, help="timed chats, each a new thread")
    parser.add_argument("--backfills", type=int, default=5, help="backfill starts spread over the chats")
    parser.add_argument("--warmup", type=int, default=5, help="untimed chats before the first RSS sample")
    parser.add_argument("--local-dir", type=Path, default=None, help="the stack's data folder (default: temporary)")
    parser.add_argument(
        "--no-demo-docs",
        action="store_true",
        help="start dev with --no-demo-setup: chats then retrieve from no documents (for a host whose pgvector"
        " cannot compute distances)",
    )
    args = parser.parse_args(argv)
    if args.local_dir is not None:
        run(args, args.local_dir.absolute())
        return
    with tempfile.TemporaryDirectory(prefix="tlsoak") as tmp:
        run(args, Path(tmp) / "local")


if __name__ == "__main__":
    main()
