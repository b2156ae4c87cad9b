"""Lambda's asynchronous invocation (InvocationType=Event), as the local cloud runs it.

What AWS does, and so what this does: the event is accepted (202) if it is at most 256 KB, queued, and
invoked; a function error (an exception, a timeout, running out of memory) is retried up to the
function's MaximumRetryAttempts (default 2), about 1 minute and then 2 minutes later; an event older than
MaximumEventAgeInSeconds is not retried any more. When the retries are exhausted (or the event expired),
the OnFailure destination gets Lambda's invocation record; a success goes to OnSuccess. EventBridge
Scheduler invokes Lambda this way: its own RetryPolicy only covers a failed hand-over, never a function error.

The retry delays are configurable: real-ish in `make dev`, short in tests.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from threadline.local.deployment import AsyncConfig
from threadline.local.runtime import ASYNC_PAYLOAD_LIMIT, Invocation, LambdaRuntime, RequestTooLarge

_LOG = logging.getLogger("threadline.local.async")
AWS_RETRY_DELAYS_S = (60.0, 120.0)  # Lambda waits about a minute, then two, between attempts

Deliver = Callable[[str, dict[str, Any]], None]  # (destination ARN, invocation record)


@dataclass
class AsyncOutcome:
    """An accepted asynchronous invocation: its attempts so far, and where its record went."""

    request_id: str
    function_arn: str
    attempts: list[Invocation] = field(default_factory=list)
    condition: str | None = None  # "Success", "RetriesExhausted" or "EventAgeExceeded" once finished
    destination: str | None = None
    finished: threading.Event = field(default_factory=threading.Event)

    def wait(self, timeout_s: float = 60.0) -> AsyncOutcome:
        """Block until every attempt ran (and the destination got its record)."""
        if not self.finished.wait(timeout_s):
            raise TimeoutError(f"asynchronous invocation {self.request_id} still running after {timeout_s}s")
        return self

    @property
    def last(self) -> Invocation:
        """The last attempt's result."""
        return self.attempts[-1]


def destination_record(
    outcome: AsyncOutcome, condition: str, request_payload: Any, invocation: Invocation
) -> dict[str, Any]:
    """The record Lambda sends to an invocation's destination."""
    response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if invocation.errored:
        response_context["functionError"] = "Unhandled"
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "requestContext": {
            "requestId": outcome.request_id,
            "functionArn": f"{outcome.function_arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": len(outcome.attempts),
        },
        "requestPayload": request_payload,
        "responseContext": response_context,
        "responsePayload": invocation.payload,
    }


class AsyncInvoker:
    """Runs Event invocations on background threads with Lambda's retries and destinations."""

    def __init__(
        self,
        runtime: LambdaRuntime,
        configs: Callable[[str], AsyncConfig],
        deliver: Deliver,
        *,
        retry_delays_s: Sequence[float] = AWS_RETRY_DELAYS_S,
    ) -> None:
        self.runtime = runtime
        self.configs = configs
        self.deliver = deliver
        self.retry_delays_s = tuple(retry_delays_s)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def invoke(self, function: str, payload: bytes | str) -> AsyncOutcome:
        """Accept an event (raises RequestTooLarge over 256 KB) and run it in the background."""
        spec = self.runtime.spec(function)
        data = payload.encode() if isinstance(payload, str) else payload
        if len(data) > ASYNC_PAYLOAD_LIMIT:
            raise RequestTooLarge(spec.name, len(data), ASYNC_PAYLOAD_LIMIT)
        outcome = AsyncOutcome(request_id=str(uuid.uuid4()), function_arn=spec.arn)
        thread = threading.Thread(
            target=self._run, args=(outcome, data, time.monotonic()), name=f"async-{spec.name}", daemon=True
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return outcome

    def _delay(self, attempt: int) -> float:
        return self.retry_delays_s[min(attempt, len(self.retry_delays_s)) - 1] if self.retry_delays_s else 0.0

    def _run(self, outcome: AsyncOutcome, data: bytes, accepted: float) -> None:
        config = self.configs(outcome.function_arn)
        condition = "RetriesExhausted"
        try:
            while True:
                # Lambda's retries are for errors of the function; the payload is already within the limit.
                result = self.runtime.invoke(outcome.function_arn, data)
                outcome.attempts.append(result)
                if not result.errored:
                    condition = "Success"
                    break
                if len(outcome.attempts) > config.maximum_retry_attempts:
                    break
                delay = self._delay(len(outcome.attempts))
                if time.monotonic() + delay - accepted > config.maximum_event_age_s:
                    condition = "EventAgeExceeded"
                    break
                _LOG.info(
                    "%s failed (%s); Lambda retries it in %.1f s",
                    outcome.function_arn,
                    result.error_type,
                    delay,
                )
                if self._stop.wait(delay):
                    return
            outcome.condition = condition
            target = config.on_success if condition == "Success" else config.on_failure
            if target:
                self.deliver(target, destination_record(outcome, condition, json.loads(data or b"null"), result))
                outcome.destination = target
            elif condition != "Success":
                _LOG.error("%s: event dropped after %d attempts (%s)", outcome.function_arn, len(outcome.attempts),
                           condition)  # fmt: skip
        except Exception:
            _LOG.exception("asynchronous invocation of %s failed", outcome.function_arn)
        finally:
            outcome.finished.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop waiting for retries (an invocation in progress finishes)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
