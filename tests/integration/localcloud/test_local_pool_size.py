"""The template's per-function pool sizes reach the workers as written; the in-process API keeps its own."""

from __future__ import annotations

import os

import pytest

from threadline.local.cloud import LocalCloud
from threadline.settings import Settings

pytestmark = pytest.mark.integration


def test_functions_keep_their_template_pool_size_and_the_local_process_its_own(local_cloud: LocalCloud) -> None:
    # Given template.yaml deployed locally
    functions = local_cloud.deployment.functions

    # When the functions' environments and the local process's are read
    pools = {lid: info.environment["DB_POOL_MAX"] for lid, info in functions.items()}
    local = local_cloud.environment()["DB_POOL_MAX"]

    # Then each function has the template's size (sized for one Lambda invocation at a time)
    assert pools["ApiFunction"] == pools["ChatFunction"] == "2" and pools["ClassifierFunction"] == "1"
    # And each function's worker runs with exactly that size, as its Lambda environment would
    assert local_cloud.function_environment("ClassifierFunction")["DB_POOL_MAX"] == "1"
    # And the process serving the API and operator commands keeps its own (it serves many requests at once)
    expected = os.environ.get("DB_POOL_MAX", str(Settings.model_fields["db_pool_max"].default))
    assert local == expected and local_cloud.settings(Settings()).db_pool_max == int(expected)
