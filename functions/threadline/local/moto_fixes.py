"""Fixes to moto 5.2 that the local cloud needs, applied in-process and kept in one place."""

from __future__ import annotations

from typing import Any

_APPLIED: list[str] = []


def _share_on_deepcopy(self: Any, _memo: dict[int, Any]) -> Any:
    return self


def _no_docker_attribute(original: property) -> property:
    def docker_client(self: Any) -> Any:
        from docker.errors import DockerException  # type: ignore[import-untyped]

        try:
            return original.fget(self) if original.fget else None
        except DockerException as exc:
            raise AttributeError("docker is not available") from exc

    return property(docker_client)


def install() -> None:
    """Apply every fix once."""
    if _APPLIED:
        return
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.utilities.docker_utilities import DockerModel

    # StartExecution deep-copies the state machine, executions included; a finished execution keeps its
    # worker, whose environment holds locks that cannot be copied, so every second start failed with
    # "cannot pickle '_thread.RLock'". The copy only has to freeze the definition: workers can be shared.
    ExecutionWorker.__deepcopy__ = _share_on_deepcopy  # type: ignore[attr-defined]
    # GET /moto-api/data.json (how sent SES mail is read back) reads every attribute of every model and
    # skips those raising AttributeError; a Lambda function's docker_client raised DockerException
    # instead (no Docker here), which failed the whole request.
    DockerModel.docker_client = _no_docker_attribute(DockerModel.__dict__["docker_client"])  # type: ignore[method-assign,assignment]
    _APPLIED.append("all")
