"""A small template (tests/fixtures/localcloud) deployed next to the real one, to test the local cloud itself."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.localcloud import TEMPLATE as FIXTURE_TEMPLATE
from tests.fixtures.localcloud import handlers
from threadline.local.cloud import LocalCloud

# The fixture handlers run in worker processes and record their calls here (the template's CallsDir).
CALLS_DIR = Path(tempfile.mkdtemp(prefix="lct-calls-"))
# Lambda waits about 1 and 2 minutes between asynchronous retries; the tests wait a fraction of a second.
RETRY_DELAYS_S = (0.2, 0.4)


def recorded() -> list[tuple[str, Any, dict[str, str]]]:
    """The fixture handlers' calls since the test began: (handler, event, environment)."""
    return handlers.calls(CALLS_DIR)


def recorded_times() -> list[tuple[str, float]]:
    """When each recorded call began: (handler, epoch seconds)."""
    return handlers.call_times(CALLS_DIR)


def _start(endpoint: str) -> LocalCloud:
    return LocalCloud.start(
        endpoint,
        template=FIXTURE_TEMPLATE,
        parameters={"DatabaseUrl": "postgresql://fixture-db/unused", "CallsDir": str(CALLS_DIR)},
        stack_name="lct",
        retry_delays_s=RETRY_DELAYS_S,
    )


@pytest.fixture(scope="session")
def fixture_cloud(local_cloud: LocalCloud) -> Iterator[LocalCloud]:
    """The fixture template deployed under its own stack name into the session's endpoint."""
    cloud = _start(local_cloud.deployment.endpoint)
    yield cloud
    cloud.close()


@pytest.fixture(scope="session")
def fixture_moto_cloud(fixture_cloud: LocalCloud, moto_endpoint: str) -> Iterator[LocalCloud]:
    """The fixture template on the in-process moto (Step Functions tasks need it)."""
    if fixture_cloud.deployment.endpoint == moto_endpoint:
        yield fixture_cloud
        return
    cloud = _start(moto_endpoint)
    yield cloud
    cloud.close()


@pytest.fixture
def lcloud(fixture_cloud: LocalCloud) -> Iterator[LocalCloud]:
    """The fixture cloud with empty queues and no recorded handler calls."""
    handlers.reset(CALLS_DIR)
    with fixture_cloud.session():
        yield fixture_cloud


@pytest.fixture
def lmoto(fixture_moto_cloud: LocalCloud) -> Iterator[LocalCloud]:
    """`lcloud` on the in-process moto."""
    handlers.reset(CALLS_DIR)
    with fixture_moto_cloud.session():
        yield fixture_moto_cloud
