"""THREADLINE_CLOUD=localstack: every boto3 client comes from localstack_client, and the AWS-facing tests pass
unchanged against a LocalStack edge (here a moto server listening where LOCALSTACK_HOST points)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from threadline.adapters.aws.clients import new_client
from threadline.local.deploy import aws_client
from threadline.local.moto_server import free_port
from threadline.settings import get_settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
# Deploy and pollers: the template deployed generically, SQS polled with batches, failures and a DLQ.
SUBSET = ["tests/integration/localcloud/test_deploy.py", "tests/integration/localcloud/test_pollers.py"]


@pytest.fixture
def localstack_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The switch on, LOCALSTACK_HOST at a port of our choosing, no AWS_ENDPOINT_URL; the settings re-read."""
    host = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("THREADLINE_CLOUD", "localstack")
    monkeypatch.setenv("LOCALSTACK_HOST", host)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    get_settings.cache_clear()
    yield host
    get_settings.cache_clear()


def _access_key(client: Any) -> str:
    key: str = client._request_signer._credentials.access_key
    return key


def test_every_client_comes_from_localstack_client_at_localstack_host(localstack_env: str) -> None:
    # Given THREADLINE_CLOUD=localstack and LOCALSTACK_HOST
    # When the app and the local cloud make their clients
    app = new_client("sqs", "", "eu-west-1")
    local = aws_client("stepfunctions", "", "eu-west-1")
    beside = aws_client("s3", "http://127.0.0.1:5999", "eu-west-1")

    # Then they go to LOCALSTACK_HOST with localstack_client's session (its own fixed test credentials)
    assert app.meta.endpoint_url == local.meta.endpoint_url == f"http://{localstack_env}"
    assert _access_key(app) == _access_key(local) == "accesskey"
    assert app.meta.region_name == "eu-west-1"
    # And an explicit endpoint (an in-process moto next to LocalStack) is still honoured, through the same session
    assert beside.meta.endpoint_url == "http://127.0.0.1:5999" and _access_key(beside) == "accesskey"


def _wait_for_port(port: int, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@pytest.fixture
def edge() -> Iterator[int]:
    """threadline.local.moto_server in its own process (its MOTO_PORT must not leak into this one), as the edge."""
    port = free_port()
    code = f"from threadline.local.moto_server import start_moto; import time; start_moto({port}); time.sleep(3600)"
    server = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": "functions"})
    try:
        _wait_for_port(port, 60)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.slow  # ~30 s: a second pytest run of the AWS-facing tests through a LocalStack-style edge
def test_aws_facing_tests_pass_unchanged_against_the_localstack_edge(edge: int) -> None:
    # Given a LocalStack edge on LOCALSTACK_HOST and the switch, in a clean environment for a pytest subprocess
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "MOTO_PORT")}
    env |= {"THREADLINE_CLOUD": "localstack", "LOCALSTACK_HOST": f"127.0.0.1:{edge}"}

    # When the deploy and poller tests run there, unchanged
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *SUBSET],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )

    # Then every one of them passes, none skipped
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "passed" in summary and "skipped" not in summary and "deselected" not in summary, summary
    # And what they deployed is on the edge: both stacks' queues were created through LOCALSTACK_HOST
    sqs = boto3.client(
        "sqs",
        endpoint_url=f"http://127.0.0.1:{edge}",
        region_name="us-east-1",
        aws_access_key_id="accesskey",
        aws_secret_access_key="secretkey",
    )
    names = [url.rsplit("/", 1)[-1] for url in sqs.list_queues().get("QueueUrls", [])]
    assert any(n.startswith("threadline-") for n in names) and any(n.startswith("lct-") for n in names), names
