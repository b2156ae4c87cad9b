"""ChatFunction through the Lambda Web Adapter's contract: run.sh, readiness on /health, a streamed Function URL."""

from __future__ import annotations

import dataclasses
import errno
import json
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.integration.rag.conftest import Tenant, upload
from threadline.local.cloud import LocalCloud
from threadline.local.openai_stub import OpenAIStub, Reply
from threadline.local.web_adapter import WebAdapter
from threadline.settings import Settings

pytestmark = pytest.mark.integration

BILLING = "# Billing\n\n## Refunds\n\nRefunds are paid back to the original card within five business days.\n"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _function_url_event(method: str, path: str, headers: dict[str, str], body: Any = None) -> dict[str, Any]:
    """A Function URL request in payload format 2.0, as Lambda hands it to the adapter."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", **headers},
        "requestContext": {"http": {"method": method, "path": path, "protocol": "HTTP/1.1"}},
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


def _with_model(local_cloud: LocalCloud, settings: Settings, llm_stub: OpenAIStub) -> dict[str, str]:
    """The local cloud's pinned values with the test database and the model stub, as ChatFunction needs them."""
    return {
        **local_cloud.runtime.pinned,
        "DATABASE_URL": settings.database_url,
        "OPENAI_BASE_URL": llm_stub.base_url,
        "OPENAI_API_KEY": "sk-test",
        "LLM_MODEL": "stub-model",
    }


def _ask_stream(tenant: Tenant) -> dict[str, Any]:
    """A Function URL event that asks the billing question on the streaming route."""
    return _function_url_event(
        "POST",
        f"/query/v1/projects/{tenant.project_id}/chat/stream/",
        {"x-api-key": tenant.key, "accept": "text/event-stream"},
        {"query": "How long do refunds take?"},
    )


@pytest.fixture
def chat_function(local_cloud: LocalCloud) -> Iterator[Any]:
    """A factory of ChatFunction environments (its template environment, on the given pinned values)."""
    started: list[WebAdapter] = []

    def start(**pinned: str) -> WebAdapter:
        adapter = WebAdapter(
            local_cloud.runtime.spec("ChatFunction"), {**local_cloud.runtime.pinned, **pinned}, port=_free_port()
        )
        started.append(adapter)
        adapter.wait_ready()
        return adapter

    yield start
    for adapter in started:
        adapter.close()


def test_the_app_under_the_adapter_writes_only_to_tmp_as_in_lambda(local_cloud: LocalCloud) -> None:
    # Given ChatFunction's environment, its code a web app that writes where it is asked to (its folder stands
    # for Lambda's read-only /var/task)
    code_dir = Path(__file__).resolve().parents[2] / "fixtures" / "web_writer"
    spec = dataclasses.replace(local_cloud.runtime.spec("ChatFunction"), code_dir=code_dir)
    adapter = WebAdapter(spec, local_cloud.runtime.pinned, port=_free_port())
    name = f"web-written-{uuid.uuid4().hex}.txt"
    try:
        adapter.wait_ready()

        # When it writes into its code folder, by absolute and by relative path, then to /tmp
        def write(path: Path | str) -> Any:
            query = urlencode({"path": str(path)})
            response = adapter.invoke({**_function_url_event("GET", "/write", {}), "rawQueryString": query})
            return json.loads(b"".join(response.chunks))

        absolute, relative, in_tmp = write(code_dir / name), write(name), write(Path(tempfile.gettempdir()) / name)
    finally:
        adapter.close()
        written = [p for p in (code_dir / name, Path(tempfile.gettempdir()) / name) if p.exists()]
        for path in written:
            path.unlink()

    # Then the code folder refused both as Lambda's filesystem does, /tmp took the file, and the app saw nothing
    # of the local runtime's check in its environment or on its path
    for refused in (absolute, relative):
        assert refused["written"] is False and refused["errno"] == errno.EROFS, refused
        assert "Read-only file system" in refused["error"]
    assert in_tmp["written"] is True
    assert written == [Path(tempfile.gettempdir()) / name]
    assert not any(result["sees_local_runtime"] for result in (absolute, relative, in_tmp))


def test_the_body_ends_at_the_functions_timeout_as_the_invocation_does(local_cloud: LocalCloud) -> None:
    # Given ChatFunction's environment with a 2 s Timeout, its code a web app that sends a chunk, then nothing
    code_dir = Path(__file__).resolve().parents[2] / "fixtures" / "web_writer"
    spec = dataclasses.replace(local_cloud.runtime.spec("ChatFunction"), code_dir=code_dir, timeout_s=2)
    adapter = WebAdapter(spec, local_cloud.runtime.pinned, port=_free_port())
    try:
        adapter.wait_ready()

        # When its slow route is invoked
        started = time.monotonic()
        response = adapter.invoke(_function_url_event("GET", "/slow", {}))
        body = b"".join(response.chunks)
        took = time.monotonic() - started
    finally:
        adapter.close()

    # Then the client got what was written before the Timeout, and the invocation ended there, not a minute later
    assert body == b"first\n" and response.timed_out
    assert 1.9 <= took < 5, took


def test_a_model_still_writing_near_the_timeout_is_stopped_and_the_answer_saved_as_failed(
    local_cloud: LocalCloud, client: TestClient, tenant: Tenant, llm_stub: OpenAIStub, settings: Settings
) -> None:
    # Given ChatFunction with a 6 s Timeout, and a model that would take 12 s (a word every 0.6 s)
    upload(client, tenant, "Billing", BILLING)
    words = " ".join(f"word{i}" for i in range(20))
    llm_stub.script(Reply(text="Five days [1]."), Reply(text=words, delay_s=0.6))
    spec = dataclasses.replace(local_cloud.runtime.spec("ChatFunction"), timeout_s=6)
    pinned = _with_model(local_cloud, settings, llm_stub)
    adapter = WebAdapter(spec, pinned, port=_free_port())
    try:
        adapter.wait_ready()
        # An environment's first question also loads the chat routes (compiled first in a fresh checkout, as in
        # Lambda), the model's session and the pool: up to seconds on a busy machine, which this test's 3 s to
        # the deadline cannot hold. The deadline under test is the model's, so one answer warms the environment.
        warm = b"".join(adapter.invoke(_ask_stream(tenant)).chunks).decode()
        assert "event: done" in warm, warm
        event = _ask_stream(tenant)

        # When the question is streamed through the adapter
        started = time.monotonic()
        response = adapter.invoke(event)
        stream = b"".join(response.chunks).decode()
        took = time.monotonic() - started
    finally:
        adapter.close()

    # Then the app stopped the model SAVE_MARGIN_S (3 s) before the invocation's deadline: the stream ends with
    # its own `error` event inside the Timeout, not cut by Lambda
    names = [line.removeprefix("event: ") for line in stream.splitlines() if line.startswith("event: ")]
    assert not response.timed_out and took < 6, took
    assert names[0] == "meta" and "token" in names and names[-1] == "error", names
    error = json.loads(stream.rsplit("data: ", 1)[1])
    assert error["code"] == "unavailable" and "in time" in error["message"]
    # And the exchange was saved as failed, with the words the model had written
    thread = client.get(f"/query/v1/threads/{error['thread_id']}/", headers={"X-API-KEY": tenant.key}).json()
    exchange = thread["messages"][-1]
    assert exchange["status"] == "failed" and "in time" in exchange["error"]
    assert exchange["answer"].startswith("word0")


def test_a_traced_chat_records_the_models_call_in_the_invocations_trace(
    local_cloud: LocalCloud, client: TestClient, tenant: Tenant, llm_stub: OpenAIStub, settings: Settings
) -> None:
    # Given ChatFunction (`Tracing: Active`) under the adapter, with the local X-Ray daemon, and a model
    upload(client, tenant, "Billing", BILLING)
    spec = local_cloud.runtime.spec("ChatFunction")
    assert spec.traced
    pinned = _with_model(local_cloud, settings, llm_stub)
    daemon = local_cloud.runtime.xray
    adapter = WebAdapter(spec, pinned, port=_free_port(), xray_daemon=daemon.address)
    try:
        adapter.wait_ready()
        event = _ask_stream(tenant)

        # When a question is streamed through the adapter, which sends the invocation's trace header
        response = adapter.invoke(event)
        stream = b"".join(response.chunks).decode()
        assert response.trace_id and "event: done" in stream
        llm_host = urlsplit(llm_stub.base_url).hostname
        found: list[dict[str, Any]] = []
        for _ in range(40):  # the SDK sends each subsegment by UDP as it closes
            found = daemon.documents(response.trace_id)
            if any(d["name"] == llm_host for d in found):
                break
            time.sleep(0.05)
    finally:
        adapter.close()

    # Then the model's HTTP call is a subsegment of that invocation's trace (the SDK discarded it before, as
    # "Lambda worker still initializing"), and no document carries the project's key
    assert any(d["name"] == llm_host and d.get("namespace") == "remote" for d in found), found
    assert tenant.key not in json.dumps(found)


def test_health_is_a_liveness_check_that_needs_no_database(chat_function: Any) -> None:
    # Given ChatFunction started with a database that cannot be reached
    adapter = chat_function(DATABASE_URL="postgresql://threadline@127.0.0.1:9/unreachable?connect_timeout=1")

    # When the adapter's readiness check path and the readiness route are requested through a Function URL
    health = adapter.invoke(_function_url_event("GET", "/health", {}))
    health_body = b"".join(health.chunks)
    ready = adapter.invoke(_function_url_event("GET", "/ready", {}))
    ready_body = b"".join(ready.chunks)

    # Then the function became ready and /health answers; only /ready says the database is missing
    assert health.status == 200 and json.loads(health_body)["status"] == "ok"
    assert ready.status == 503 and json.loads(ready_body)["status"] == "unavailable"


def test_a_chat_answer_streams_through_the_function_url_token_by_token(
    chat_function: Any, client: TestClient, tenant: Tenant, llm_stub: OpenAIStub, settings: Settings
) -> None:
    # Given a document, and a model that writes its answer a word every 0.15 s
    upload(client, tenant, "Billing", BILLING)
    llm_stub.script(Reply(text="Refunds take five business days [1].", delay_s=0.15))
    adapter = chat_function(
        DATABASE_URL=settings.database_url,
        OPENAI_BASE_URL=llm_stub.base_url,
        OPENAI_API_KEY="sk-test",
        LLM_MODEL="stub-model",
    )
    event = _ask_stream(tenant)

    # When the question is streamed through the adapter
    response = adapter.invoke(event)
    arrivals = [(time.monotonic(), chunk) for chunk in response.chunks]

    # Then the prelude says SSE, the events are meta, tokens, sources, done, and tokens arrived before done
    assert response.status == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert adapter.prelude(response).endswith(b"\0" * 8)
    stream = b"".join(chunk for _, chunk in arrivals).decode()
    names = [line.removeprefix("event: ") for line in stream.splitlines() if line.startswith("event: ")]
    assert names[0] == "meta" and names[-2:] == ["sources", "done"] and set(names[1:-2]) == {"token"}
    first_token = next(at for at, chunk in arrivals if b"event: token" in chunk)
    done = next(at for at, chunk in arrivals if b"event: done" in chunk)
    assert done - first_token >= 0.5
