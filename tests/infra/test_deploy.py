"""`make deploy`'s change-set flow (infra/build/deploy.py) against the local cloud's CloudFormation."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from infra.build import deploy

pytestmark = pytest.mark.infra

TEMPLATE = """
Parameters:
  Name:
    Type: String
  Tag:
    Type: String
    Default: first
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Ref Name
      Tags: [{Key: release, Value: !Ref Tag}]
"""


def test_a_stack_is_created_left_alone_and_updated_keeping_parameters_not_given(
    aws_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a template with a required and a defaulted parameter
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE)
    cfn = boto3.client("cloudformation", endpoint_url=aws_endpoint, region_name="us-east-1")
    s3 = boto3.client("s3", endpoint_url=aws_endpoint, region_name="us-east-1")

    def tag() -> str:
        return str(s3.get_bucket_tagging(Bucket="deploy-test-bucket")["TagSet"][0]["Value"])

    # When it is deployed, deployed again unchanged, then with only Tag given
    deploy.deploy(cfn, s3, "deploy-test", template, "unused", {"Name": "deploy-test-bucket"}, poll_s=0.05)
    created = tag()
    deploy.deploy(cfn, s3, "deploy-test", template, "unused", {}, poll_s=0.05)
    deploy.deploy(cfn, s3, "deploy-test", template, "unused", {"Tag": "second"}, poll_s=0.05)

    # Then the stack was created, the no-op said so, and the update kept Name (UsePreviousValue)
    assert created == "first"
    assert tag() == "second"
    said = capsys.readouterr().out
    assert "deploy-test: executing CREATE change set" in said
    assert "deploy-test: no changes" in said
    assert "deploy-test: executing UPDATE change set" in said


@pytest.mark.parametrize("bad", ["DatabaseUrl", "=value"])
def test_a_parameter_that_is_not_key_value_is_named(bad: str) -> None:
    # Given a malformed parameter argument / When it is parsed / Then the error names it
    with pytest.raises(ValueError, match=f"parameter '{bad}' is not Key=Value"):
        deploy.parse_parameters(["LogLevel=DEBUG", bad])


def test_parameters_keep_everything_after_the_first_equals_sign() -> None:
    # Given a URL value with '=' in its query / When parsed / Then the value is whole
    assert deploy.parse_parameters(["DatabaseUrl=postgresql://h/db?sslmode=require"]) == {
        "DatabaseUrl": "postgresql://h/db?sslmode=require"
    }
