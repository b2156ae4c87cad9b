"""What the local cloud created from template.yaml: logical ids mapped to physical names, URLs and ARNs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class AsyncConfig:
    """How Lambda handles the function's asynchronous invocations (its AWS::Lambda::EventInvokeConfig)."""

    maximum_retry_attempts: int = 2  # Lambda's defaults when the function has no EventInvokeConfig
    maximum_event_age_s: int = 21600
    on_failure: str | None = None  # destination ARN
    on_success: str | None = None


@dataclass(frozen=True)
class FunctionInfo:
    """A Lambda function: where its code starts, the layers and environment it runs with, and its limits."""

    logical_id: str
    name: str
    arn: str
    handler: str
    environment: dict[str, str]  # resolved template values; /opt paths as written (the runtime maps them)
    timeout_s: int
    memory_mb: int = 128
    code_dir: Path | None = None  # the local CodeUri folder
    layer_dirs: tuple[Path, ...] = ()  # the local ContentUri folders of its layers, in order
    external_layers: tuple[str, ...] = ()  # layer ARNs that are not built from this template
    async_config: AsyncConfig = field(default_factory=AsyncConfig)
    tracing: bool = False  # X-Ray active (`Tracing: Active`, TracingConfig Mode Active once transformed)


@dataclass(frozen=True)
class QueueInfo:
    """An SQS queue and its redrive policy."""

    logical_id: str
    name: str
    url: str
    arn: str
    dead_letter_arn: str | None = None
    max_receive_count: int | None = None


@dataclass(frozen=True)
class EventSourceInfo:
    """An SQS event source mapping: which queue feeds which function, and how."""

    logical_id: str
    function: str  # logical id
    queue: str  # logical id
    batch_size: int
    batching_window_s: int
    report_batch_item_failures: bool
    enabled: bool = True
    maximum_concurrency: int = 2  # ScalingConfig.MaximumConcurrency: concurrent batches (2 is its minimum)


@dataclass(frozen=True)
class StateMachineInfo:
    """A Step Functions state machine."""

    logical_id: str
    name: str
    arn: str
    definition_path: Path | None


@dataclass(frozen=True)
class ScheduleInfo:
    """An EventBridge Scheduler schedule (a ScheduleV2 event) and the function it targets."""

    logical_id: str
    name: str
    aliases: frozenset[str]  # the SAM event name, the logical id, the physical name
    expression: str
    timezone: str
    target: str  # logical id of the target function
    input: str | None
    enabled: bool = True


@dataclass
class Deployment:
    """Everything `deploy()` created, by logical id."""

    endpoint: str
    region: str
    account_id: str
    functions: dict[str, FunctionInfo] = field(default_factory=dict)
    queues: dict[str, QueueInfo] = field(default_factory=dict)
    buckets: dict[str, str] = field(default_factory=dict)
    state_machines: dict[str, StateMachineInfo] = field(default_factory=dict)
    schedules: dict[str, ScheduleInfo] = field(default_factory=dict)
    event_sources: dict[str, EventSourceInfo] = field(default_factory=dict)
    senders: list[str] = field(default_factory=list)
    refs: dict[str, str] = field(default_factory=dict)  # logical id -> what !Ref gives

    def function(self, name: str) -> FunctionInfo:
        """A function by logical id, physical name or ARN."""
        for info in self.functions.values():
            if name in (info.logical_id, info.name, info.arn):
                return info
        raise KeyError(f"no function {name!r} in the deployment")

    def schedule(self, name: str) -> ScheduleInfo:
        """A schedule by SAM event name, logical id or physical name."""
        for info in self.schedules.values():
            if name in info.aliases:
                return info
        raise KeyError(f"no schedule {name!r}; known: {sorted(s.logical_id for s in self.schedules.values())}")

    def queue_by_arn(self, arn: str) -> QueueInfo:
        """A queue by its ARN."""
        for info in self.queues.values():
            if info.arn == arn:
                return info
        raise KeyError(f"no queue with ARN {arn}")

    def environment(self) -> dict[str, str]:
        """The union of every function's environment (what one local process running them all needs)."""
        merged: dict[str, str] = {}
        for info in sorted(self.functions.values(), key=lambda f: f.logical_id):
            merged.update(info.environment)
        return merged
