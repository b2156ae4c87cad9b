"""Read template.yaml and translate it to CloudFormation with aws-sam-translator, offline."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Local artefact paths (CodeUri, ContentUri, DefinitionUri) are what `sam build` uploads; the translator
# only accepts S3 locations, so they are swapped for placeholders and the local paths remembered.
PLACEHOLDER_BUCKET = "threadline-local-artifacts"
_URI_KEYS = ("CodeUri", "ContentUri", "DefinitionUri")


@dataclass(frozen=True)
class Translated:
    """The SAM template, its CloudFormation translation, and the local paths the placeholders stand for."""

    sam: dict[str, Any]
    cfn: dict[str, Any]
    local_paths: dict[tuple[str, str], Path] = field(default_factory=dict)  # (logical id, key) -> path
    root: Path = Path()

    def state_machine_definition_path(self, logical_id: str) -> Path | None:
        """The local ASL file of a state machine declared with a local DefinitionUri."""
        return self.local_paths.get((logical_id, "DefinitionUri"))


def load_sam(path: Path) -> dict[str, Any]:
    """Parse a SAM/CloudFormation YAML file with its short-form intrinsics (!Ref, !Sub, ...) as plain dicts."""
    from cfnlint.decode import decode_str

    template, problems = decode_str(path.read_text(encoding="utf-8"))
    if problems or template is None:
        raise ValueError(f"{path}: {[str(p) for p in problems]}")
    # cfn-lint's node classes carry line marks; a JSON round-trip leaves plain, mutable dicts and lists.
    plain: dict[str, Any] = json.loads(json.dumps(template))
    return plain


def _swap_local_uris(sam: dict[str, Any], root: Path) -> dict[tuple[str, str], Path]:
    swapped: dict[tuple[str, str], Path] = {}
    sections = [("Globals", props) for props in sam.get("Globals", {}).values() if isinstance(props, dict)]
    sections += [(logical_id, res.get("Properties", {})) for logical_id, res in sam.get("Resources", {}).items()]
    for owner, props in sections:
        for key in _URI_KEYS:
            value = props.get(key)
            if isinstance(value, str) and not value.startswith("s3://"):
                swapped[(owner, key)] = (root / value).resolve()
                props[key] = f"s3://{PLACEHOLDER_BUCKET}/{owner}/{key}"
    return swapped


def _no_managed_policies() -> dict[str, str]:
    # Managed policy names would be looked up in IAM; the local cloud ignores IAM, so none are needed.
    return {}


def translate(template_path: Path, parameters: dict[str, str] | None = None) -> Translated:
    """The CloudFormation the SAM transform would produce for this template, computed without AWS."""
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    sam = load_sam(template_path)
    working = json.loads(json.dumps(sam))
    local_paths = _swap_local_uris(working, template_path.parent)
    # The translator asks boto for the partition of the current region.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    cfn = Translator(None, Parser()).translate(
        working, parameter_values=dict(parameters or {}), get_managed_policy_map=_no_managed_policies
    )
    return Translated(sam=sam, cfn=cfn, local_paths=local_paths, root=template_path.parent)


def parameter_values(cfn: dict[str, Any], given: dict[str, str]) -> dict[str, str]:
    """Every template parameter's value: the given one, else its Default; a missing required one is an error."""
    values: dict[str, str] = {}
    for name, spec in cfn.get("Parameters", {}).items():
        if name in given:
            values[name] = given[name]
        elif "Default" in spec:
            default = spec["Default"]
            values[name] = ",".join(map(str, default)) if isinstance(default, list) else str(default)
        else:
            raise ValueError(f"template parameter {name} has no default and no value was given")
    return values
