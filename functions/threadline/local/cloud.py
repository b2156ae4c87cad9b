"""The local cloud as one object: a deployed template plus the glue that makes it act like AWS.

Tests get it from the `local_cloud` fixture; `threadline dev` builds one around its own moto server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from threadline.local import invoke
from threadline.local.deploy import aws_client, deploy
from threadline.local.deployment import Deployment
from threadline.local.invoke import Invocation, invoke_function
from threadline.local.mail import SentMail, sent_mail
from threadline.local.pollers import DrainReport, drain
from threadline.local.schedules import fire
from threadline.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = REPO_ROOT / "template.yaml"


@dataclass
class LocalCloud:
    """A deployment and the ways to drive it: drain the pollers, fire schedules, invoke functions."""

    deployment: Deployment

    @classmethod
    def start(cls, endpoint: str, *, template: Path = TEMPLATE, **deploy_options: Any) -> LocalCloud:
        """Deploy `template` at `endpoint` and route moto's Lambda invocations to our handlers."""
        invoke.install()
        # The default report sender must be verified, or SES refuses the reports.
        deploy_options.setdefault("senders", [str(Settings.model_fields["report_sender"].default)])
        cloud = cls(deploy(template, endpoint, **deploy_options))
        invoke.set_overrides(cloud.base_overrides())
        return cloud

    def base_overrides(self) -> dict[str, str]:
        """What every local handler needs on top of its template environment: where AWS is."""
        return {
            "AWS_ENDPOINT_URL": self.deployment.endpoint,
            "AWS_DEFAULT_REGION": self.deployment.region,
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            # X-Ray has no daemon here.
            "POWERTOOLS_TRACE_DISABLED": "true",
            # The template sizes each function's pool for one Lambda invocation at a time (1, or 2 for the HTTP
            # functions); one local process serves them all at once, so it keeps its own pool size, which also
            # spares it a container rebuild each time functions with different sizes alternate.
            "DB_POOL_MAX": os.environ.get("DB_POOL_MAX", str(Settings.model_fields["db_pool_max"].default)),
        }

    def environment(self) -> dict[str, str]:
        """The environment one process running every function sees (template values plus the overrides)."""
        return {**self.deployment.environment(), **self.base_overrides()}

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
        """Empty queues, pin extra variables (e.g. DATABASE_URL) for handlers, restore the process after."""
        saved = dict(os.environ)
        self.purge()
        invoke.set_overrides({**self.base_overrides(), **environment})
        try:
            yield self
        finally:
            invoke.set_overrides(self.base_overrides())
            os.environ.clear()
            os.environ.update(saved)
            invoke.reset_caches(close=True)

    def purge(self) -> None:
        """Delete every message of every queue (dead-letter queues included)."""
        sqs = aws_client("sqs", self.deployment.endpoint, self.deployment.region)
        for queue in self.deployment.queues.values():
            sqs.purge_queue(QueueUrl=queue.url)

    def drain(self, *queues: str, timeout_s: float = 60.0) -> DrainReport:
        """Run the SQS pollers until the queues are idle (see pollers.drain)."""
        return drain(self.deployment, *queues, timeout_s=timeout_s)

    def invoke(self, function: str, event: Any) -> Invocation:
        """Invoke a function (logical id or name) in-process with `event`."""
        return invoke_function(self.deployment.function(function), event)

    def fire(self, schedule: str) -> Invocation:
        """Fire a schedule (SAM event name, logical id or name) now: its target gets the schedule's Input."""
        return fire(self.deployment, self.deployment.schedule(schedule))

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
