"""Resolve the CloudFormation intrinsics a template uses in properties (Ref, GetAtt, Sub, Join, Select, Split)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


class UnresolvedError(ValueError):
    """An intrinsic names something the local cloud did not create."""


@dataclass
class Resolver:
    """Values of parameters, pseudo parameters, resource Refs and resource attributes."""

    parameters: Mapping[str, str]
    region: str
    account_id: str
    stack_name: str
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)

    def ref(self, name: str) -> str:
        """The value `!Ref name` stands for."""
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/local",
            "AWS::NoValue": "",
        }
        for table in (pseudo, self.parameters, self.refs):
            if name in table:
                return table[name]
        raise UnresolvedError(f"Ref {name}: not a parameter or a resource the local cloud created")

    def get_att(self, logical_id: str, attribute: str) -> str:
        """The value `!GetAtt logical_id.attribute` stands for."""
        try:
            return self.attributes[(logical_id, attribute)]
        except KeyError:
            raise UnresolvedError(f"GetAtt {logical_id}.{attribute}: not created by the local cloud") from None

    def resolve(self, value: Any) -> Any:
        """`value` with every intrinsic replaced by its local value."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key.startswith("Fn::"):
                return self._function(key, arg)
        return {key: self.resolve(item) for key, item in value.items()}

    def _function(self, name: str, arg: Any) -> Any:
        if name == "Fn::GetAtt":
            logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            return self.get_att(logical_id, attribute)
        if name == "Fn::Sub":
            return self._sub(arg)
        resolved = self.resolve(arg)
        if name == "Fn::Join":
            separator, items = resolved
            return separator.join(str(item) for item in items)
        if name == "Fn::Select":
            index, items = resolved
            return items[int(index)]
        if name == "Fn::Split":
            separator, text = resolved
            return text.split(separator)
        raise UnresolvedError(f"{name} is not supported by the local cloud")

    def _sub(self, arg: Any) -> str:
        template, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self.ref(name)

        # `${!Name}` is CloudFormation's escape for a literal `${Name}`.
        return _SUB_VARIABLE.sub(replace, template).replace("${!", "${")
