"""Fixtures of the template checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


class _Loader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !GetAtt, ...) as their plain values."""


def _tag(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_Loader.add_multi_constructor("!", _tag)


@pytest.fixture(scope="session")
def resources() -> dict[str, Any]:
    """The Resources of template.yaml as written (before the SAM transform)."""
    template: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=_Loader)
    return template["Resources"]


REPO_ROOT = TEMPLATE.parent
PACKAGE_DIR = REPO_ROOT / "build" / "package"
SIZE_REPORT = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def package_manifest() -> dict[str, Any]:
    """build/package as `make package` leaves it, brought up to date (the dependencies layer only when
    layers/deps/requirements.txt changed), so a template edit is checked even without `make package`."""
    from infra.build import package

    return package.build(TEMPLATE, PACKAGE_DIR, REPO_ROOT / ".local" / "tools" / "bin" / "uv")


@pytest.fixture(scope="session")
def lambda_python() -> Path:
    """A Python of the functions' runtime (python3.12), which the cp312 wheels of the layer need."""
    from infra.build import checks

    return checks.find_python()


@pytest.fixture(scope="session")
def packaged_template(package_manifest: dict[str, Any], aws_endpoint: str) -> Path:
    """template.packaged.yaml, its artifacts uploaded to the local cloud's S3 (what `make package` does)."""
    import boto3

    from infra.build import package

    s3 = boto3.client("s3", endpoint_url=aws_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="threadline-package-test")
    return package.upload(TEMPLATE, PACKAGE_DIR, s3, "threadline-package-test")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """The artifact's unzipped size per function, whatever the capture mode (-s or not)."""
    report = config.stash.get(SIZE_REPORT, None)
    if report:
        terminalreporter.write_sep("-", "packaged artifact")
        terminalreporter.write_line(report)
