"""Fixes to moto 5.2.1 that the local cloud needs, applied in-process and kept in one place.

Each fix names the moto behaviour it corrects and, where there is one, the upstream fix.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

_APPLIED: list[str] = []


def _snapshot_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
    """Deep-copy a state machine as the definition snapshot StartExecution wants: no executions, shared backend."""
    memo[id(self.executions)] = []
    backend = getattr(self, "backend", None)
    if backend is not None:
        memo[id(backend)] = backend
    clone = self.__class__.__new__(self.__class__)
    memo[id(self)] = clone
    for name, value in self.__dict__.items():
        setattr(clone, name, copy.deepcopy(value, memo))
    return clone


def _no_docker_attribute(original: property) -> property:
    def docker_client(self: Any) -> Any:
        from docker.errors import DockerException  # type: ignore[import-untyped]

        try:
            return original.fget(self) if original.fget else None
        except DockerException as exc:
            raise AttributeError("docker is not available") from exc

    return property(docker_client)


class _Undeclared(int):
    """The tolerated-failure count of a Map that declares none (0, told apart from an explicit 0)."""


class _UndeclaredPercentage(float):
    """The tolerated-failure percentage of a Map that declares none (0.0, told apart from an explicit 0)."""


_NO_COUNT = _Undeclared(0)
_NO_PERCENTAGE = _UndeclaredPercentage(0.0)


def _threshold_exceeded(failed: int, total: int, count: int, percentage: float) -> bool:
    """AWS's rule: a Map Run fails when its failed (or timed-out) items exceed either declared threshold.

    Neither declared: both are 0, so one failed item fails it. Only one declared: only that one applies.
    The percentage is failed items over all items, times 100; "exceeds" is strictly greater.
    """
    count_declared = count is not _NO_COUNT
    percentage_declared = percentage is not _NO_PERCENTAGE
    if not count_declared and not percentage_declared:
        return failed > 0
    over_count = count_declared and failed > count
    over_percentage = percentage_declared and total > 0 and failed * 100.0 / total > percentage
    return over_count or over_percentage


def _mark_undeclared_thresholds(original: Callable[..., None]) -> Callable[..., None]:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.tolerated_failure import (
        ToleratedFailureCountDecl,
        ToleratedFailureCountInt,
        ToleratedFailurePercentage,
        ToleratedFailurePercentageDecl,
    )

    def from_state_props(self: Any, state_props: Any) -> None:
        original(self, state_props)
        if state_props.get(ToleratedFailureCountDecl) is None:
            self.tolerated_failure_count_decl = ToleratedFailureCountInt(_NO_COUNT)
        if state_props.get(ToleratedFailurePercentageDecl) is None:
            self.tolerated_failure_percentage_decl = ToleratedFailurePercentage(_NO_PERCENTAGE)

    return from_state_props


def _fail_over_threshold(original: Callable[..., None]) -> Callable[..., None]:
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )

    error = StatesErrorNameType.StatesExceedToleratedFailureThreshold

    def map_run(self: Any, env: Any, eval_input: Any) -> None:
        original(self, env, eval_input)  # every child has run; their outputs are on the stack
        if not env.is_running():
            # StopExecution aborted the children: in AWS a stopped execution ends there, with no threshold
            # evaluated and no Catch run, so the Map Run must not turn the stop into a failure here either.
            return
        items = eval_input.map_run_record.item_counter
        failed = items.failed.get() + items.timed_out.get()
        total = items.total.get()
        if not _threshold_exceeded(
            failed, total, eval_input.tolerated_failure_count, eval_input.tolerated_failure_percentage
        ):
            return
        env.stack.pop()
        details = MapRunFailedEventDetails(
            error=error.to_name(),
            cause=f"The specified tolerated failure threshold was exceeded ({failed} of {total} items failed)",
        )
        event_details: Any = {"mapRunFailedEventDetails": details}  # an EventDetails (a TypedDict)
        raise FailureEventException(
            FailureEvent(
                env=env,
                error_name=StatesErrorName(typ=error),
                event_type=HistoryEventType.MapRunFailed,
                event_details=event_details,
            )
        )

    return map_run


def _install_distributed_map_thresholds() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap

    StateMap.from_state_props = _mark_undeclared_thresholds(StateMap.from_state_props)  # type: ignore[method-assign]
    DistributedIterationComponent._map_run = _fail_over_threshold(  # type: ignore[method-assign]
        DistributedIterationComponent._map_run
    )


def install() -> None:
    """Apply every fix once."""
    if _APPLIED:
        return
    from moto.stepfunctions.models import StateMachineInstance
    from moto.utilities.docker_utilities import DockerModel

    # StartExecution deep-copies the state machine to freeze its definition for the execution. In moto
    # 5.2.1 that copy took the machine's executions (each holding its own earlier copy) and its backend
    # (every machine, with all their executions): after 17 backfills one machine was held 66,312 times
    # (285 MB of /moto-api/data.json, a 12 GB process), and a finished execution's worker, whose locks
    # cannot be copied, made every second start fail. moto 5.2.5 copies with the executions left out
    # and the backend shared (getmoto/moto#10077); this is that fix, applied to every machine copy.
    StateMachineInstance.__deepcopy__ = _snapshot_deepcopy  # type: ignore[attr-defined]
    # GET /moto-api/data.json reads every attribute of every model and skips those raising
    # AttributeError; a Lambda function's docker_client raised DockerException instead (no Docker here),
    # which failed the whole request.
    DockerModel.docker_client = _no_docker_attribute(DockerModel.__dict__["docker_client"])  # type: ignore[method-assign,assignment]
    # moto 5.2.1 (and 5.2.5) parse ToleratedFailureCount/Percentage but never evaluate them ("declarations
    # currently have no effect"): a distributed Map whose children fail still succeeds, with null results.
    # AWS fails the Map Run with States.ExceedToleratedFailureThreshold, which the state's Catch sees.
    _install_distributed_map_thresholds()
    _APPLIED.append("all")
