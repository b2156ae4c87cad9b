"""Fixes to moto 5.2 that the local cloud needs, applied in-process and kept in one place."""

from __future__ import annotations

from typing import Any


def _share_on_deepcopy(self: Any, _memo: dict[int, Any]) -> Any:
    return self


def install() -> None:
    """Apply every fix (idempotent)."""
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    # StartExecution deep-copies the state machine, executions included; a finished execution keeps its
    # worker, whose environment holds locks that cannot be copied, so every second start failed with
    # "cannot pickle '_thread.RLock'". The copy only has to freeze the definition: workers can be shared.
    ExecutionWorker.__deepcopy__ = _share_on_deepcopy  # type: ignore[attr-defined]
