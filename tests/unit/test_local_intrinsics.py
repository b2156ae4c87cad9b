"""The intrinsic functions the local cloud resolves in template properties."""

from __future__ import annotations

from typing import Any

import pytest

from threadline.local.intrinsics import Resolver, UnresolvedError

pytestmark = pytest.mark.unit


def _resolver() -> Resolver:
    return Resolver(
        parameters={"Stage": "dev"},
        region="eu-west-1",
        account_id="123456789012",
        stack_name="tl",
        refs={"Queue": "http://moto/123456789012/tl-Queue"},
        attributes={
            ("Queue", "Arn"): "arn:aws:sqs:eu-west-1:123456789012:tl-Queue",
            ("Queue", "QueueName"): "tl-Queue",
        },
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"Ref": "Queue"}, "http://moto/123456789012/tl-Queue"),
        ({"Ref": "Stage"}, "dev"),
        ({"Ref": "AWS::Region"}, "eu-west-1"),
        ({"Fn::GetAtt": ["Queue", "Arn"]}, "arn:aws:sqs:eu-west-1:123456789012:tl-Queue"),
        ({"Fn::GetAtt": "Queue.QueueName"}, "tl-Queue"),
        ({"Fn::Sub": "${AWS::StackName}-${Stage}-${Queue.QueueName}"}, "tl-dev-tl-Queue"),
        ({"Fn::Sub": ["${Name}/x", {"Name": {"Ref": "Stage"}}]}, "dev/x"),
        ({"Fn::Sub": "keep ${!Literal}"}, "keep ${Literal}"),
        ({"Fn::Join": ["-", ["a", {"Ref": "Stage"}]]}, "a-dev"),
        ({"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]}, "b"),
        ({"Nested": [{"Ref": "Stage"}, 3]}, {"Nested": ["dev", 3]}),
    ],
)
def test_intrinsics_resolve_to_local_values(value: Any, expected: Any) -> None:
    # Given a property value / When resolved / Then every intrinsic is replaced by its local value
    assert _resolver().resolve(value) == expected


@pytest.mark.parametrize("value", [{"Ref": "Nope"}, {"Fn::GetAtt": ["Queue", "Nope"]}, {"Fn::If": ["C", 1, 2]}])
def test_what_the_local_cloud_did_not_create_is_named_in_the_error(value: Any) -> None:
    # Given a reference to something unknown / When resolved / Then the error says which
    with pytest.raises(UnresolvedError):
        _resolver().resolve(value)
