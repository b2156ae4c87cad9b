"""ReportSchedule and ReportFunction in template.yaml: present, translatable, pointing at real code."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

REPO = Path(__file__).resolve().parents[2]


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def _template() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml_parse((REPO / "template.yaml").read_text())
    return parsed


@pytest.mark.infra
def test_report_schedule_is_an_hourly_schedule_v2_on_report_function() -> None:
    function = _template()["Resources"]["ReportFunction"]["Properties"]
    event = function["Events"]["ReportSchedule"]
    assert event["Type"] == "ScheduleV2"
    assert event["Properties"]["ScheduleExpression"] == "cron(0 * * * ? *)"
    assert json.loads(event["Properties"]["Input"])["kind"] == "report_tick"
    module, name = function["Handler"].rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), name))


@pytest.mark.infra
def test_template_translates_to_a_scheduler_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the template with local code paths replaced, as `sam deploy` would after packaging
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    template = _template()
    template["Globals"]["Function"]["CodeUri"] = "s3://bucket/code.zip"
    for resource in template["Resources"].values():
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if key in resource.get("Properties", {}):
                resource["Properties"][key] = "s3://bucket/artifact.zip"
    # When SAM translates it
    resources = transform(template, {}, _NoManagedPolicies())["Resources"]
    # Then the schedule targets ReportFunction with the tick's scheduled time in its input
    schedule = resources["ReportFunctionReportSchedule"]
    assert schedule["Type"] == "AWS::Scheduler::Schedule"
    assert schedule["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": ["ReportFunction", "Arn"]}
    assert "<aws.scheduler.scheduled-time>" in schedule["Properties"]["Target"]["Input"]


@pytest.mark.infra
def test_sample_schedule_event_is_valid_json() -> None:
    event = json.loads((REPO / "events" / "schedule" / "report_tick.json").read_text())
    assert event["kind"] == "report_tick" and event["scheduled_time"].endswith("Z")
