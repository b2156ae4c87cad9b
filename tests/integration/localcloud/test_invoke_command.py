"""`threadline invoke` runs every sample event of events/ as `sam local invoke -e` would, without Docker."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from threadline.local.cloud import LocalCloud
from threadline.local.invoke_command import DEFAULT_PACKAGE, InvokeOptions, invoke_once, run
from threadline.local.runtime import SYNC_PAYLOAD_LIMIT
from threadline.settings import Settings

pytestmark = pytest.mark.integration

EVENTS = REPO_ROOT / "events"
Check = Callable[[Any], bool]


def _no_failures(payload: Any) -> bool:
    return payload == {"batchItemFailures": []}


def _unauthorized(payload: Any) -> bool:
    return payload["statusCode"] == 401


# Each sample, the function it is for, and what it gives on an empty database: the placeholder ids of the
# samples name nothing, so the backfill steps fail with the NotFound their state machine catches, and the
# uploaded document is not in the bucket (its record is reported for a retry).
SAMPLES: dict[str, tuple[str, str | None, Check]] = {
    "sqs/classify_thread.json": ("ClassifierFunction", None, _no_failures),
    "sqs/import_chunk.json": ("ImportFunction", None, _no_failures),
    "sqs/document_uploaded.json": (
        "IngestFunction",
        None,
        lambda p: p == {"batchItemFailures": [{"itemIdentifier": "7c1e2d3f-4a5b-4c6d-8e7f-9a0b1c2d3e01"}]},
    ),
    "sqs/measure_interaction.json": ("MetricsFunction", None, _no_failures),
    "stepfunctions/backfill_plan.json": ("BackfillPlanFunction", "NotFound", lambda p: True),
    "stepfunctions/backfill_classify_range.json": ("BackfillClassifyRangeFunction", "NotFound", lambda p: True),
    "stepfunctions/backfill_summarize_caught.json": ("BackfillSummarizeFunction", "NotFound", lambda p: True),
    "schedule/report_tick.json": ("ReportFunction", None, lambda p: p["counts"]["sent"] == 0),
    "apigw/get_thread.json": ("ApiFunction", None, _unauthorized),
    "apigw/post_chat.json": ("ApiFunction", None, _unauthorized),
    # The sample key names no project: each protocol's own 401 (OpenAI's error body; MCP over JSON-RPC).
    "apigw/post_chat_completions.json": ("ApiFunction", None, _unauthorized),
    "apigw/post_mcp.json": ("ApiFunction", None, _unauthorized),
    "schedule/sweep_tick.json": ("SweeperFunction", None, lambda p: p["asked"] == p["requeued"] == 0),
    # The database is migrated already; the sample's response URL answers nothing (port 9), which the
    # handler reports instead of raising (CloudFormation then times the deploy out).
    "cloudformation/migrate_create.json": (
        "MigrateFunction",
        None,
        lambda p: p["Status"] == "SUCCESS" and p["Data"]["Applied"] == "0" and p["delivered"] is False,
    ),
    "cloudformation/migrate_update.json": ("MigrateFunction", None, lambda p: p["Status"] == "SUCCESS"),
    "cloudformation/migrate_delete.json": ("MigrateFunction", None, lambda p: p["Status"] == "SUCCESS"),
}
_REPORT = re.compile(
    r"^REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: (\d+) MB\t"
    r"Max Memory Used: (\d+) MB\tInit Duration: [\d.]+ ms$",
    re.MULTILINE,
)


def test_every_sample_event_has_its_function() -> None:
    # Given the sample events in the repository
    samples = {str(path.relative_to(EVENTS)) for path in EVENTS.rglob("*.json")}

    # When they are compared with the table the invoke test runs / Then none is left out
    assert samples == set(SAMPLES)


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_a_sample_event_runs_in_a_fresh_process_from_source(
    local_cloud: LocalCloud, settings: Settings, sample: str
) -> None:
    # Given a sample event, its function, and the local cloud on an empty database
    function, error_type, check = SAMPLES[sample]
    options = InvokeOptions(
        function=function,
        event_path=EVENTS / sample,
        endpoint=local_cloud.deployment.endpoint,
        database_url=settings.database_url,
    )
    logs = io.StringIO()

    # When `threadline invoke FUNCTION -e events/SAMPLE --source` runs it
    result = invoke_once(options, logs=logs, deployment=local_cloud.deployment)

    # Then the function ran once, cold, with its own memory size, and answered as expected; its logs came
    # before Lambda's REPORT line, which closes them
    assert result.error_type == error_type, result.payload
    assert check(result.payload), result.payload
    assert logs.getvalue().splitlines()[-1].startswith("REPORT RequestId: ")
    [report] = _REPORT.findall(logs.getvalue())
    assert int(report[0]) == local_cloud.deployment.functions[function].memory_mb
    assert 0 < int(report[1]) <= int(report[0])


def test_an_event_over_6_mb_is_refused_and_the_command_fails(
    local_cloud: LocalCloud, settings: Settings, tmp_path: Path
) -> None:
    # Given an event file over Lambda's 6 MB synchronous limit
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"kind": "report_tick", "padding": "x" * SYNC_PAYLOAD_LIMIT}))
    out, logs = io.StringIO(), io.StringIO()
    options = InvokeOptions(
        function="ReportFunction",
        event_path=big,
        endpoint=local_cloud.deployment.endpoint,
        database_url=settings.database_url,
    )

    # When it is invoked
    code = run(options, out=out, logs=logs, deployment=local_cloud.deployment)

    # Then nothing ran, the command failed and said why
    assert code == 1
    assert out.getvalue() == ""
    assert json.loads(logs.getvalue())["errorType"] == "RequestEntityTooLargeException"


def test_the_packaged_artifact_runs_a_sample_event(local_cloud: LocalCloud, settings: Settings) -> None:
    # Given the artifact `make package` builds (`make test` builds it first)
    assert (DEFAULT_PACKAGE / "manifest.json").is_file(), "run make package"
    options = InvokeOptions(
        function="ReportFunction",
        event_path=EVENTS / "schedule" / "report_tick.json",
        endpoint=local_cloud.deployment.endpoint,
        database_url=settings.database_url,
        package=DEFAULT_PACKAGE,
    )
    logs = io.StringIO()

    # When the report tick runs from the packaged code and layers under python3.12
    result = invoke_once(options, logs=logs, deployment=local_cloud.deployment)

    # Then it answered as it does from source, with one REPORT line
    assert not result.errored, (result.payload, logs.getvalue())
    assert result.payload["counts"] == {"sent": 0, "skipped": 0, "failed": 0, "uncertain": 0}
    assert len(_REPORT.findall(logs.getvalue())) == 1
