"""`threadline backfill`: start, resume or follow backfills."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any
from uuid import UUID

from threadline.bootstrap import Container
from threadline.domain import backfill

_POLL_S = 2.0


def configure(sub: Any) -> None:
    """Add `threadline backfill`."""
    parser = sub.add_parser("backfill", help="label past threads with the backfill state machine")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--all", action="store_true", help="every project, in one backfill")
    target.add_argument("--project", type=UUID, help="one project")
    target.add_argument("--status", type=UUID, metavar="BACKFILL_ID", help="show a backfill's progress")
    parser.add_argument("--scope", choices=[s.value for s in backfill.Scope], default=backfill.Scope.UNLABELLED.value)
    parser.add_argument("--wait", action="store_true", help="follow the backfill until it ends")
    parser.set_defaults(func=_backfill)


def _runner(container: Container) -> backfill.WorkflowRunner:
    settings = container.settings
    if settings.backfill_state_machine_arn or not settings.aws_endpoint_url:
        return container.backfill_runner
    from threadline.adapters.aws.backfill import StepFunctionsRunner, find_state_machine
    from threadline.adapters.aws.clients import stepfunctions_for

    # An endpoint but no ARN (an operator's shell): the state machine is found by the template's name.
    def sfn() -> Any:
        return stepfunctions_for(settings.aws_endpoint_url, settings.aws_region)

    return StepFunctionsRunner(find_state_machine(sfn()), sfn)


def _backfill(args: argparse.Namespace, container: Container) -> object:
    runner = _runner(container)
    if args.status is not None:
        job = backfill.status(container.backfills, runner, None, args.status)
    else:
        project_id = None if args.all else args.project
        started = backfill.start(container.backfills, runner, project_id, backfill.Scope(args.scope))
        job = started.backfill
        sys.stderr.write(f"{'resumed' if started.resumed else 'started'} backfill {job.id}\n")
    while args.wait and job.state is backfill.State.RUNNING:
        time.sleep(_POLL_S)
        job = backfill.status(container.backfills, runner, None, job.id)
        sys.stderr.write(f"{job.ranges_done}/{job.ranges_total} ranges, {job.threads_labelled} threads labelled\n")
    return job
