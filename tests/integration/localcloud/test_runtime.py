"""The local runtime runs each function as Lambda does: its own environment, its Timeout, memory and payload limits."""

from __future__ import annotations

import errno
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.localcloud.conftest import recorded, recorded_times
from threadline.local.cloud import LocalCloud
from threadline.local.deploy import aws_client
from threadline.local.pollers import PollerThreads
from threadline.local.runtime import ASYNC_PAYLOAD_LIMIT, SYNC_PAYLOAD_LIMIT, LambdaRuntime, RequestTooLarge

pytestmark = pytest.mark.integration


def test_a_function_sees_only_its_own_environment(lcloud: LocalCloud) -> None:
    # Given WorkerFunction has WORK_QUEUE_URL and TickFunction does not

    # When TickFunction runs
    result = lcloud.invoke("TickFunction", {"n": 1})

    # Then it saw its own values, Lambda's reserved ones and the local endpoint, and nothing of other functions
    # or of the test process
    assert not result.errored, result.payload
    _, _, env = recorded()[0]
    assert "WORK_QUEUE_URL" not in env
    assert "PYTEST_CURRENT_TEST" not in env
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "lct-TickFunction"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["_HANDLER"] == "tests.fixtures.localcloud.handlers.tick"
    assert env["AWS_ENDPOINT_URL"] == lcloud.deployment.endpoint
    assert env["LAMBDA_TASK_ROOT"] == env["PYTHONPATH"].split(":")[0]
    # nor anything of the local runtime's read-only filesystem (local/lambda_site took itself out)
    assert "lambda_site" not in env["PYTHONPATH"] and not [name for name in env if "THREADLINE_LOCAL" in name]


def test_a_function_writes_only_to_tmp_as_in_lambda(lcloud: LocalCloud) -> None:
    # Given WriterFunction, whose code folder stands for Lambda's read-only /var/task
    code_dir = lcloud.runtime.spec("WriterFunction").code_dir
    name = f"lct-written-{uuid.uuid4().hex}.txt"

    # When it writes into its code folder, by absolute and by relative path (its working folder), then to /tmp
    absolute = lcloud.invoke("WriterFunction", {"path": str(code_dir / name)})
    relative = lcloud.invoke("WriterFunction", {"path": name})
    in_tmp = lcloud.invoke("WriterFunction", {"path": str(Path(tempfile.gettempdir()) / name)})

    # Then the code folder refused both as Lambda's filesystem does, and /tmp took the file
    written = [path for path in (code_dir / name, Path(tempfile.gettempdir()) / name) if path.exists()]
    for path in written:
        path.unlink()
    for refused in (absolute, relative):
        assert not refused.errored, refused.payload
        assert refused.payload["written"] is False and refused.payload["errno"] == errno.EROFS
        assert "Read-only file system" in refused.payload["error"]
    assert written == [Path(tempfile.gettempdir()) / name]
    assert in_tmp.payload == {"written": True}


def test_a_pinned_value_reaches_a_warm_worker(lcloud: LocalCloud) -> None:
    # Given a warm TickFunction worker
    lcloud.invoke("TickFunction", {})

    # When a test pins another database and the function runs again
    with lcloud.session(DATABASE_URL="postgresql://elsewhere/db"):
        lcloud.invoke("TickFunction", {})

    # Then the same worker process saw the new value, and its own value afterwards
    lcloud.invoke("TickFunction", {})
    envs = [env for _, _, env in recorded()]
    assert [env["DATABASE_URL"] for env in envs] == [
        "postgresql://fixture-db/unused",
        "postgresql://elsewhere/db",
        "postgresql://fixture-db/unused",
    ]


def test_an_opt_path_no_layer_holds_fails_naming_the_function_variable_and_path(lcloud: LocalCloud) -> None:
    # Given BrokenLayerPathFunction's TOKENIZER_PATH=/opt/model/tokenizer.json, which its layer does not hold

    # When it is invoked
    result = lcloud.invoke("BrokenLayerPathFunction", {})

    # Then the invocation failed before the handler ran, saying which function, variable and path
    assert result.errored
    message = result.payload["errorMessage"]
    assert "BrokenLayerPathFunction" in message
    assert "TOKENIZER_PATH=/opt/model/tokenizer.json" in message
    assert recorded() == []


def test_a_function_that_outlives_its_timeout_is_stopped_and_reported_as_lambda_does(lcloud: LocalCloud) -> None:
    # Given SlowFunction, whose Timeout is 1 s

    # When it is asked to sleep 2.5 s
    started = time.monotonic()
    result = lcloud.invoke("SlowFunction", {"sleep_s": 2.5})
    elapsed = time.monotonic() - started

    # Then it was stopped after its second, with Lambda's error; the next invocation gets a fresh environment
    assert result.errored
    assert result.error_type == "Sandbox.Timedout"
    assert result.payload["errorMessage"].endswith(f"{result.request_id} Task timed out after 1.00 seconds")
    assert elapsed < 2.5
    quick = lcloud.invoke("SlowFunction", {"sleep_s": 0})
    assert not quick.errored and quick.init_ms is not None


def test_a_function_over_its_memory_size_is_killed(lcloud: LocalCloud) -> None:
    # Given HungryFunction, whose MemorySize is 128 MB

    # When it holds 40 MB, then 300 MB
    fits = lcloud.invoke("HungryFunction", {"mb": 40})
    too_much = lcloud.invoke("HungryFunction", {"mb": 300})

    # Then the first succeeded within its memory, the second was killed as Lambda kills it
    assert not fits.errored and 40 <= fits.max_memory_mb <= 128
    assert too_much.error_type == "Runtime.OutOfMemory"
    assert "Runtime exited with error: signal: killed" in too_much.payload["errorMessage"]


def test_payload_limits_are_enforced(lcloud: LocalCloud) -> None:
    # Given events just over Lambda's synchronous (6 MB) and asynchronous (256 KB) limits
    sync_event = {"blob": "x" * SYNC_PAYLOAD_LIMIT}
    async_event = {"blob": "x" * ASYNC_PAYLOAD_LIMIT}

    # When they are invoked, and a function returns more than 6 MB
    with pytest.raises(RequestTooLarge) as sync_refused:
        lcloud.invoke("TickFunction", sync_event)
    with pytest.raises(RequestTooLarge) as async_refused:
        lcloud.invoke_async("TickFunction", async_event)
    big = lcloud.invoke("StepFunction", {"mode": "big", "key": "big", "size": SYNC_PAYLOAD_LIMIT})

    # Then the requests were refused before anything ran, and the response became Lambda's error
    assert sync_refused.value.limit == SYNC_PAYLOAD_LIMIT
    assert async_refused.value.limit == ASYNC_PAYLOAD_LIMIT
    assert [name for name, _, _ in recorded()] == ["step"]
    assert big.error_type == "Function.ResponseSizeTooLarge"


def test_the_invoke_api_refuses_an_oversized_event_with_413(lmoto: LocalCloud) -> None:
    # Given the Lambda API of the endpoint
    lam = aws_client("lambda", lmoto.deployment.endpoint, lmoto.deployment.region)

    # When an event of 7 MB is sent
    with pytest.raises(lam.exceptions.ClientError) as refused:
        lam.invoke(FunctionName="lct-TickFunction", Payload=json.dumps({"blob": "x" * 7_000_000}).encode())

    # Then Lambda's 413 came back and the function never ran
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert recorded() == []


def _failure_records(cloud: LocalCloud) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in cloud.queue_messages("FailureQueue")]


def test_an_async_invocation_is_retried_then_recorded_in_its_on_failure_destination(lcloud: LocalCloud) -> None:
    # Given FlakyFunction's EventInvokeConfig: one retry, failures to FailureQueue

    # When its schedule fires with an input that fails five times
    outcome = lcloud.fire("Flaky").wait()

    # Then Lambda ran it twice (the first attempt and one retry) and sent its record to the destination
    assert [a.error_type for a in outcome.attempts] == ["FlakyError", "FlakyError"]
    assert outcome.condition == "RetriesExhausted"
    [record] = _failure_records(lcloud)
    assert record["version"] == "1.0"
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestContext"]["functionArn"] == lcloud.deployment.functions["FlakyFunction"].arn + ":$LATEST"
    assert record["requestPayload"] == {"fail_times": 5}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"]["errorType"] == "FlakyError"


def test_an_async_invocation_that_succeeds_on_its_retry_sends_no_failure(lcloud: LocalCloud) -> None:
    # Given an event that fails once

    # When it is invoked asynchronously
    outcome = lcloud.invoke_async("FlakyFunction", {"fail_times": 1, "key": "once"}).wait()

    # Then the retry succeeded and nothing reached the failure destination
    assert [a.errored for a in outcome.attempts] == [True, False]
    assert outcome.condition == "Success"
    assert _failure_records(lcloud) == []


def test_a_timed_out_batch_comes_back_after_its_visibility_timeout(lcloud: LocalCloud) -> None:
    # Given a message asking SlowFunction (Timeout 1 s) to work 1.5 s, on a queue whose visibility timeout is 2 s
    d = lcloud.deployment
    aws_client("sqs", d.endpoint, d.region).send_message(QueueUrl=d.queues["SlowQueue"].url, MessageBody="1.5")

    # When the pollers of the event source mapping run for a while
    threads = PollerThreads(d, lcloud.runtime)
    threads.start()
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline and len([c for c in recorded() if c[0] == "slow"]) < 2:
        time.sleep(0.2)
    threads.stop()

    # Then the timed-out batch was not deleted: it was delivered again, with its receive count up, only after
    # the visibility timeout (not at once)
    deliveries = [event["Records"][0] for name, event, _ in recorded() if name == "slow"]
    assert [r["attributes"]["ApproximateReceiveCount"] for r in deliveries[:2]] == ["1", "2"]
    first, second = [at for name, at in recorded_times() if name == "slow"][:2]
    assert second - first >= 1.9


def test_the_invoke_api_accepts_an_event_invocation_and_retries_it_in_the_background(lmoto: LocalCloud) -> None:
    # Given the Lambda API of the endpoint and an event FlakyFunction fails on every attempt
    lam = aws_client("lambda", lmoto.deployment.endpoint, lmoto.deployment.region)
    payload = {"fail_times": 5, "key": "through-the-api"}

    # When it is invoked with InvocationType=Event
    response = lam.invoke(
        FunctionName="lct-FlakyFunction", InvocationType="Event", Payload=json.dumps(payload).encode()
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not _failure_records(lmoto):
        time.sleep(0.2)

    # Then Lambda accepted it at once (202), and after its retry the failure record reached the destination
    assert response["StatusCode"] == 202
    [record] = _failure_records(lmoto)
    assert record["requestPayload"] == payload
    assert record["requestContext"]["approximateInvokeCount"] == 2


def test_a_stopping_runtime_serves_warm_workers_and_starts_no_new_one(lcloud: LocalCloud) -> None:
    # Given a runtime of its own with one warm TickFunction worker
    runtime = LambdaRuntime()
    runtime.register(lcloud.runtime.spec("TickFunction"))
    runtime.register(lcloud.runtime.spec("WorkerFunction"))
    runtime.set_pinned(lcloud.runtime.pinned)
    try:
        warm = runtime.invoke("TickFunction", json.dumps({"n": 1}))
        # When the stack starts stopping
        runtime.stop_starting()
        again = runtime.invoke("TickFunction", json.dumps({"n": 2}))
        cold = runtime.invoke("WorkerFunction", json.dumps({"n": 3}))
    finally:
        runtime.close()
    # Then the warm worker still answers, but no cold start is begun (it would hold the stop up for seconds)
    assert not warm.errored and not again.errored
    assert cold.errored and cold.error_type == "Runtime.Stopping"
