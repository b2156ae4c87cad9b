"""What template.yaml asks Lambda to run, read offline: each function's merged properties and its layers.

Build tooling, never shipped: the packager (`infra.build.package`) and the artifact checks
(`infra.build.checks`, run by tests/infra) share these readings so they cannot disagree.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

FUNCTION = "AWS::Serverless::Function"
LAYER = "AWS::Serverless::LayerVersion"
STATE_MACHINE = "AWS::Serverless::StateMachine"
# Lambda's limit on a function's code plus all its layers, unzipped (250 MiB).
UNZIPPED_LIMIT_BYTES = 262_144_000
# Files layers built elsewhere are documented to hold (relative to /opt). The Lambda Web Adapter's layer
# carries its extension and the exec wrapper script (github.com/awslabs/aws-lambda-web-adapter, README).
EXTERNAL_LAYER_FILES: dict[str, tuple[str, ...]] = {
    "LambdaAdapterLayerX86": ("bootstrap", "extensions/lambda-adapter"),
    "LambdaAdapterLayerArm64": ("bootstrap", "extensions/lambda-adapter"),
}
_LAYER_NAME = re.compile(r":layer:([A-Za-z0-9_-]+)")


class _CfnLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no type hints
    """YAML with CloudFormation's short-form tags read as their long form (`!Ref X` is {"Ref": "X"})."""


def _short_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    # `!Ref` and `!Condition` (a condition named inside Fn::And/Or/Not/If) have no "Fn::" in their long form.
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _short_form)


def load_template(path: Path) -> dict[str, Any]:
    """Parse a SAM template, short-form intrinsics (!Ref, !Sub) as their long form ({"Ref": ...})."""
    template: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)
    return template


def _is_intrinsic(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    key = next(iter(value))
    return bool(key == "Ref" or key.startswith("Fn::"))


def merge_globals(globals_: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """SAM's Globals rule: maps merge (the resource wins), lists concatenate (globals first), scalars override."""
    merged = dict(globals_)
    for key, value in own.items():
        base = merged.get(key)
        if isinstance(base, dict) and isinstance(value, dict) and not _is_intrinsic(base) and not _is_intrinsic(value):
            merged[key] = merge_globals(base, value)
        elif isinstance(base, list) and isinstance(value, list):
            merged[key] = base + value
        else:
            merged[key] = value
    return merged


def functions(sam: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every AWS::Serverless::Function's properties with Globals.Function applied."""
    globals_ = sam.get("Globals", {}).get("Function", {})
    return {
        logical_id: merge_globals(globals_, resource.get("Properties", {}))
        for logical_id, resource in sam.get("Resources", {}).items()
        if resource.get("Type") == FUNCTION
    }


def local_layers(sam: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Layers built from a folder of this repository (ContentUri not already in S3), by logical id."""
    return {
        logical_id: resource
        for logical_id, resource in sam.get("Resources", {}).items()
        if resource.get("Type") == LAYER
        and isinstance(resource.get("Properties", {}).get("ContentUri"), str)
        and not resource["Properties"]["ContentUri"].startswith("s3://")
    }


def parameter_defaults(sam: dict[str, Any]) -> dict[str, str]:
    """Each parameter's Default as the string Lambda would see."""
    return {name: str(spec["Default"]) for name, spec in sam.get("Parameters", {}).items() if "Default" in spec}


@dataclass(frozen=True)
class LayerRefs:
    """A function's layers in the template's order: built here (logical ids) or elsewhere (ARNs as written)."""

    local: list[str]
    external: list[str]


def layer_refs(props: dict[str, Any], built: set[str]) -> LayerRefs:
    """Split a function's Layers into those this repository builds and the rest."""
    local: list[str] = []
    external: list[str] = []
    for layer in props.get("Layers", []):
        if isinstance(layer, dict) and layer.get("Ref") in built:
            local.append(str(layer["Ref"]))
        elif isinstance(layer, dict) and len(layer) == 1:
            (value,) = layer.values()
            external.append(value if isinstance(value, str) else json.dumps(value))
        else:
            external.append(str(layer))
    return LayerRefs(local, external)


def external_layer_files(arn: str) -> tuple[str, ...]:
    """The files (relative to /opt) a layer built elsewhere is documented to hold; () when unknown."""
    match = _LAYER_NAME.search(arn)
    return EXTERNAL_LAYER_FILES.get(match.group(1), ()) if match else ()


def resolve_environment(props: dict[str, Any], defaults: dict[str, str]) -> dict[str, Any]:
    """The function's environment: plain values, Refs to parameters with a Default resolved, other intrinsics kept."""
    resolved: dict[str, Any] = {}
    for name, value in props.get("Environment", {}).get("Variables", {}).items():
        if isinstance(value, dict) and value.get("Ref") in defaults:
            resolved[name] = defaults[value["Ref"]]
        elif isinstance(value, (dict, list)):
            resolved[name] = value
        else:
            resolved[name] = str(value)
    return resolved
