"""The local cloud as one object: a deployed template plus the glue that makes it act like AWS.

Its functions run in the local Lambda runtime (local/runtime.py): each in its own worker processes, with
only its own environment plus the values the local cloud pins (the endpoint, fake credentials, and in tests
the test's database). Tests get it from the `local_cloud` fixture; `threadline dev` builds one around its
own moto server.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from threadline.local import invoke
from threadline.local.async_invoke import AWS_RETRY_DELAYS_S, AsyncInvoker, AsyncOutcome
from threadline.local.deploy import aws_client, deploy
from threadline.local.deployment import AsyncConfig, Deployment
from threadline.local.mail import SentMail, sent_mail
from threadline.local.pollers import DrainReport, drain
from threadline.local.runtime import FunctionSpec, Invocation, LambdaRuntime, LayerPathError, map_layer_paths
from threadline.local.schedules import fire
from threadline.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = REPO_ROOT / "template.yaml"


@dataclass
class LocalCloud:
    """A deployment and the ways to drive it: drain the pollers, fire schedules, invoke functions."""

    deployment: Deployment
    runtime: LambdaRuntime = field(default_factory=LambdaRuntime)
    retry_delays_s: Sequence[float] = AWS_RETRY_DELAYS_S
    invoker: AsyncInvoker = field(init=False)

    def __post_init__(self) -> None:
        self.invoker = AsyncInvoker(self.runtime, self._async_config, self._deliver, retry_delays_s=self.retry_delays_s)
        invoke.register(self.runtime, self.invoker, self.deployment)
        self.runtime.set_pinned(self.base_overrides())

    @classmethod
    def start(
        cls,
        endpoint: str,
        *,
        template: Path = TEMPLATE,
        retry_delays_s: Sequence[float] = AWS_RETRY_DELAYS_S,
        max_workers: int = 4,
        **deploy_options: Any,
    ) -> LocalCloud:
        """Deploy `template` at `endpoint` and run moto's Lambda invocations in the local runtime.

        `retry_delays_s`: the waits between Lambda's asynchronous retries (AWS: about 60 s, then 120 s).
        `max_workers`: execution environments per function at most (overlapping invocations wait).
        """
        invoke.install()
        # The default report sender must be verified, or SES refuses the reports.
        deploy_options.setdefault("senders", [str(Settings.model_fields["report_sender"].default)])
        return cls(
            deploy(template, endpoint, **deploy_options),
            runtime=LambdaRuntime(max_workers=max_workers),
            retry_delays_s=retry_delays_s,
        )

    def _async_config(self, function_arn: str) -> AsyncConfig:
        return self.deployment.function(function_arn).async_config

    def _deliver(self, destination: str, record: dict[str, Any]) -> None:
        # Lambda's destinations: an SQS queue (what the template uses), or another function (async).
        service = destination.split(":")[2]
        if service == "sqs":
            queue = self.deployment.queue_by_arn(destination)
            aws_client("sqs", self.deployment.endpoint, self.deployment.region).send_message(
                QueueUrl=queue.url, MessageBody=json.dumps(record)
            )
        elif service == "lambda":
            self.invoker.invoke(destination, json.dumps(record))
        else:
            raise ValueError(f"the local cloud delivers to SQS and Lambda destinations only, not {destination}")

    def base_overrides(self) -> dict[str, str]:
        """What every local handler needs on top of its template environment: where AWS is."""
        return {
            "AWS_ENDPOINT_URL": self.deployment.endpoint,
            "AWS_DEFAULT_REGION": self.deployment.region,
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        }

    @staticmethod
    def local_process_pool() -> dict[str, str]:
        """The pool size of a process that serves many requests at once (the dev API, operator commands).

        The template sizes each function's pool for one Lambda invocation at a time (1, or 2 for the HTTP
        functions), which is what the workers get; the in-process app serves every request concurrently.
        """
        return {"DB_POOL_MAX": os.environ.get("DB_POOL_MAX", str(Settings.model_fields["db_pool_max"].default))}

    def environment(self) -> dict[str, str]:
        """The union of every function's environment plus the overrides: what operator commands and a test's
        own container attach to. /opt paths are mapped to the files in the layers' folders."""
        merged: dict[str, str] = {}
        for spec in sorted(self.runtime.specs.values(), key=lambda s: s.logical_id):
            if spec.arn in {f.arn for f in self.deployment.functions.values()}:
                merged.update(_mapped_or_raw(spec))
        return {**merged, **self.base_overrides(), **self.local_process_pool()}

    def function_environment(self, function: str) -> dict[str, str]:
        """One function's own template environment plus the overrides (what it sees, /opt paths as written)."""
        return {**self.deployment.function(function).environment, **self.runtime.pinned}

    def settings(self, base: Settings) -> Settings:
        """`base` with the deployment's resources (queue URLs, buckets, ARNs) filled in; its database is kept."""
        fields = Settings.model_fields
        update: dict[str, Any] = {
            key.lower(): value
            for key, value in self.environment().items()
            if key.lower() in fields and key != "DATABASE_URL"
        }
        update["aws_endpoint_url"] = self.deployment.endpoint
        return Settings.model_validate({**base.model_dump(), **update})

    @contextmanager
    def session(self, **environment: str) -> Iterator[LocalCloud]:
        """Empty queues and pin extra variables (e.g. a test's DATABASE_URL) for every function, until the end.

        Warm workers survive: they take the new values with their next invocation.
        """
        self.purge()
        self.runtime.set_pinned({**self.base_overrides(), **environment})
        try:
            yield self
        finally:
            self.runtime.set_pinned(self.base_overrides())

    def close(self) -> None:
        """Stop the workers and pending asynchronous retries."""
        self.invoker.stop()
        self.runtime.close()

    def purge(self) -> None:
        """Delete every message of every queue (dead-letter queues included)."""
        sqs = aws_client("sqs", self.deployment.endpoint, self.deployment.region)
        for queue in self.deployment.queues.values():
            sqs.purge_queue(QueueUrl=queue.url)

    def drain(self, *queues: str, timeout_s: float = 60.0) -> DrainReport:
        """Run the SQS pollers until the queues are idle (see pollers.drain)."""
        return drain(self.deployment, self.runtime, *queues, timeout_s=timeout_s)

    def invoke(self, function: str, event: Any) -> Invocation:
        """Invoke a function (logical id, name or ARN) synchronously with `event`, as the Invoke API does."""
        return self.runtime.invoke(self.deployment.function(function).arn, json.dumps(event))

    def invoke_async(self, function: str, event: Any) -> AsyncOutcome:
        """Invoke a function asynchronously (InvocationType=Event): Lambda's retries and destinations apply."""
        return self.invoker.invoke(self.deployment.function(function).arn, json.dumps(event))

    def fire(self, schedule: str) -> AsyncOutcome:
        """Fire a schedule (SAM event name, logical id or name) now: its target is invoked asynchronously
        with the schedule's Input (`.wait()` for the attempts)."""
        return fire(self.deployment, self.invoker, self.deployment.schedule(schedule))

    def mail(self) -> list[SentMail]:
        """Every message sent through SES so far, oldest first."""
        return sent_mail(self.deployment.endpoint)

    def queue_messages(self, queue: str, max_messages: int = 10) -> list[dict[str, Any]]:
        """Peek at up to `max_messages` messages of a queue (e.g. a DLQ); they become visible again at once."""
        info = self.deployment.queues[queue]
        sqs = aws_client("sqs", self.deployment.endpoint, self.deployment.region)
        messages: list[dict[str, Any]] = sqs.receive_message(
            QueueUrl=info.url, MaxNumberOfMessages=min(10, max_messages), VisibilityTimeout=0
        ).get("Messages", [])
        return messages


def _mapped_or_raw(spec: FunctionSpec) -> dict[str, str]:
    # A function whose /opt path no layer holds keeps it as written: its invocations fail and say so.
    try:
        return map_layer_paths(spec)
    except LayerPathError:
        return dict(spec.environment)
