"""`make deploy`: create or update the stack from build/package/template.packaged.yaml through a change set.

What `sam deploy` does, with boto3 only (the SAM CLI's pins conflict with this project's lock):
CREATE or UPDATE change set, wait for it, execute it, wait for the stack, print its outputs.
Parameters come as Key=Value arguments; on an update, a parameter not given keeps its previous value.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path
from typing import Any

from infra.build import artifact

# CloudFormation takes a template body up to 51,200 bytes; a larger one must come from S3.
MAX_TEMPLATE_BODY = 51_200
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
_NO_CHANGES = "No updates are to be performed"
_FINAL = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "IMPORT_COMPLETE"}


def say(message: str) -> None:
    """Progress on stdout."""
    print(message, flush=True)  # noqa: T201 - the deploy's output is its report


def parse_parameters(pairs: list[str]) -> dict[str, str]:
    """`Key=Value` arguments as a dict; anything else is an error that names the argument."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"parameter {pair!r} is not Key=Value")
        parsed[key] = value
    return parsed


def _stack_status(cfn: Any, stack: str) -> str | None:
    try:
        status: str = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    except cfn.exceptions.ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    return status


def _wait_for(describe: Any, pending_suffix: str, timeout_s: float, poll_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        status = str(describe())
        if not status.endswith(pending_suffix) or time.monotonic() > deadline:
            return status
        time.sleep(poll_s)


def deploy(
    cfn: Any,
    s3: Any,
    stack: str,
    template: Path,
    bucket: str,
    parameters: dict[str, str],
    *,
    poll_s: float = 5.0,
    timeout_s: float = 3600.0,
) -> dict[str, str]:
    """Create or update `stack` from `template`; returns the stack's outputs."""
    body = template.read_text(encoding="utf-8")
    source: dict[str, str] = {"TemplateBody": body}
    if len(body.encode()) > MAX_TEMPLATE_BODY:
        key = f"threadline/templates/{hashlib.sha256(body.encode()).hexdigest()}.yaml"
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
        source = {"TemplateURL": f"https://{bucket}.s3.{s3.meta.region_name}.amazonaws.com/{key}"}
    status = _stack_status(cfn, stack)
    kind = "CREATE" if status in (None, "REVIEW_IN_PROGRESS") else "UPDATE"
    declared = artifact.load_template(template).get("Parameters", {})
    given: list[dict[str, str | bool]] = [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]
    if kind == "UPDATE":
        given += [{"ParameterKey": key, "UsePreviousValue": True} for key in declared if key not in parameters]
    name = f"{stack}-{int(time.time())}"
    try:
        cfn.create_change_set(
            StackName=stack,
            ChangeSetName=name,
            ChangeSetType=kind,
            Parameters=given,
            Capabilities=CAPABILITIES,
            **source,
        )
    except cfn.exceptions.ClientError as error:
        # Some endpoints refuse an empty change set at once; CloudFormation itself marks it FAILED (below).
        if _NO_CHANGES not in str(error):
            raise
        say(f"{stack}: no changes")
        return _outputs(cfn, stack)

    def change_set() -> dict[str, Any]:
        described: dict[str, Any] = cfn.describe_change_set(StackName=stack, ChangeSetName=name)
        return described

    state = _wait_for(lambda: change_set()["Status"], "_PENDING", timeout_s, poll_s)
    state = _wait_for(lambda: change_set()["Status"], "_IN_PROGRESS", timeout_s, poll_s)
    if state == "FAILED":
        reason = str(change_set().get("StatusReason", ""))
        if "didn't contain changes" in reason or _NO_CHANGES in reason:
            cfn.delete_change_set(StackName=stack, ChangeSetName=name)
            say(f"{stack}: no changes")
            return _outputs(cfn, stack)
        raise RuntimeError(f"change set {name} failed: {reason}")
    say(f"{stack}: executing {kind} change set {name}")
    cfn.execute_change_set(StackName=stack, ChangeSetName=name)
    final = _wait_for(lambda: _stack_status(cfn, stack), "_IN_PROGRESS", timeout_s, poll_s)
    if final not in _FINAL:
        raise RuntimeError(f"{stack} ended in {final}; see its events in the CloudFormation console")
    return _outputs(cfn, stack)


def _outputs(cfn: Any, stack: str) -> dict[str, str]:
    outputs = cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    return {o["OutputKey"]: o["OutputValue"] for o in outputs}


def main(argv: list[str] | None = None) -> int:
    """Deploy the packaged template with the given Key=Value parameters and print the stack's outputs."""
    import boto3

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--template", type=Path, required=True)
    parser.add_argument("--bucket", required=True, help="where a template over 51,200 bytes is uploaded")
    parser.add_argument("parameters", nargs="*", metavar="Key=Value")
    args = parser.parse_args(argv)
    try:
        parameters = parse_parameters(args.parameters)
    except ValueError as error:
        parser.error(str(error))
    outputs = deploy(
        boto3.client("cloudformation"),
        boto3.client("s3"),
        args.stack_name,
        args.template,
        args.bucket,
        parameters,
    )
    for key, value in outputs.items():
        say(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
