"""cfn-lint on template.yaml, template.packaged.yaml and their CloudFormation translations (`make validate`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint

from threadline.local.template import translate

pytestmark = pytest.mark.infra

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
# SAM's own SQSPollerPolicy expands to sqs:DeleteMessageBatch and sqs:ChangeMessageVisibilityBatch, which
# cfn-lint's action list lacks; in the SAM template it knows the policy template and says nothing.
TRANSLATION_IGNORED = ["W3037"]


def test_the_sam_template_passes_cfn_lint() -> None:
    # Given template.yaml
    text = TEMPLATE.read_text(encoding="utf-8")

    # When cfn-lint checks it (it applies the SAM transform itself)
    problems = lint(text, config=ManualArgs(regions=["us-east-1"]))

    # Then it reports nothing, not even warnings
    assert [str(p) for p in problems] == []


def test_the_translated_cloudformation_passes_cfn_lint() -> None:
    # Given the CloudFormation aws-sam-translator makes of template.yaml (the same translation the local cloud deploys)
    cfn = translate(TEMPLATE, {"DatabaseUrl": "postgresql://db.example/threadline"}).cfn

    # When cfn-lint checks it
    problems = lint(json.dumps(cfn), config=ManualArgs(regions=["us-east-1"], ignore_checks=TRANSLATION_IGNORED))

    # Then it reports nothing, and the translation holds plain CloudFormation only
    assert [str(p) for p in problems] == []
    assert not [lid for lid, res in cfn["Resources"].items() if res["Type"].startswith("AWS::Serverless::")]


def test_the_packaged_template_and_its_translation_pass_cfn_lint(packaged_template: Path) -> None:
    # Given template.packaged.yaml, every local URI rewritten to the object uploaded to S3 (`make package`)
    text = packaged_template.read_text(encoding="utf-8")

    # When cfn-lint checks it and the CloudFormation SAM's transform makes of it
    problems = lint(text, config=ManualArgs(regions=["us-east-1"]))
    translated = translate(packaged_template, {"DatabaseUrl": "postgresql://db.example/threadline"})
    cfn = translated.cfn
    translation_problems = lint(
        json.dumps(cfn), config=ManualArgs(regions=["us-east-1"], ignore_checks=TRANSLATION_IGNORED)
    )

    # Then both are clean, and the functions' code and layers come from the bucket, no local path left
    assert [str(p) for p in problems] == []
    assert [str(p) for p in translation_problems] == []
    assert translated.local_paths == {}
    buckets = {
        res["Properties"]["Code"]["S3Bucket"]
        for res in cfn["Resources"].values()
        if res["Type"] == "AWS::Lambda::Function"
    }
    assert buckets == {"threadline-package-test"}
