"""The OpenAI-compatible API and the MCP server in template.yaml: served by ChatFunction's Function URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.conftest import _Loader
from threadline.local.template import translate

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.infra


def test_outputs_give_the_openai_base_url_and_the_mcp_url_on_the_chat_function_url() -> None:
    # Given the template's outputs
    outputs: dict[str, Any] = yaml.load((ROOT / "template.yaml").read_text(), Loader=_Loader)["Outputs"]
    # Then both URLs are paths of ChatFunction's Function URL (which already ends with a slash)
    assert outputs["OpenAIBaseUrl"]["Value"] == "${ChatFunctionUrl.FunctionUrl}v1"
    assert outputs["McpUrl"]["Value"] == "${ChatFunctionUrl.FunctionUrl}mcp"


def test_the_function_url_streams_and_leaves_authentication_to_the_app() -> None:
    # Given the translated template
    resources: dict[str, Any] = translate(ROOT / "template.yaml").cfn["Resources"]
    url = next(r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Url")
    # Then streamed completions reach clients as written, and the project key is checked by the app itself
    assert url["TargetFunctionArn"] == {"Ref": "ChatFunction"}
    assert url["InvokeMode"] == "RESPONSE_STREAM" and url["AuthType"] == "NONE"
    # And an `ask` (retrieval plus up to three model rounds) has more time than a JSON route
    assert resources["ChatFunction"]["Properties"]["Timeout"] >= 60
