"""CORS in template.yaml (issue 12): neither entry point answers preflights itself, so the app can."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.infra


def test_neither_the_function_url_nor_the_http_api_configures_cors(resources: dict[str, Any]) -> None:
    # Given ChatFunction's Function URL and the HTTP API
    url_config = resources["ChatFunction"]["Properties"]["FunctionUrlConfig"]
    http_api = resources["HttpApi"]["Properties"]
    # Then neither has a static CORS list: it would answer preflights before the app, which alone knows the
    # origins on widget keys (and a static list could only widen them, never follow each key)
    assert "Cors" not in url_config
    assert "CorsConfiguration" not in http_api


def test_both_http_functions_get_the_console_origins(resources: dict[str, Any]) -> None:
    # Given the two functions that serve the app
    for name in ("ApiFunction", "ChatFunction"):
        variables = resources[name]["Properties"]["Environment"]["Variables"]
        # Then each reads the console's origins from the one parameter
        assert variables["CONSOLE_ORIGINS"] == "ConsoleOrigins", name
    # And only ChatFunction runs under the Web Adapter, whose request-context header gives the client address
    assert "AWS_LWA_PORT" in resources["ChatFunction"]["Properties"]["Environment"]["Variables"]
    assert "AWS_LWA_PORT" not in resources["ApiFunction"]["Properties"]["Environment"]["Variables"]
