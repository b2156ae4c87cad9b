"""A small template (tests/fixtures/localcloud) deployed next to the real one, to test the local cloud itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.localcloud import TEMPLATE as FIXTURE_TEMPLATE
from tests.fixtures.localcloud import handlers
from threadline.local.cloud import LocalCloud


def _start(endpoint: str) -> LocalCloud:
    return LocalCloud.start(
        endpoint,
        template=FIXTURE_TEMPLATE,
        parameters={"DatabaseUrl": "postgresql://fixture-db/unused"},
        stack_name="lct",
    )


@pytest.fixture(scope="session")
def fixture_cloud(local_cloud: LocalCloud) -> LocalCloud:
    """The fixture template deployed under its own stack name into the session's endpoint."""
    return _start(local_cloud.deployment.endpoint)


@pytest.fixture(scope="session")
def fixture_moto_cloud(fixture_cloud: LocalCloud, moto_endpoint: str) -> LocalCloud:
    """The fixture template on the in-process moto (Step Functions tasks need it)."""
    return fixture_cloud if fixture_cloud.deployment.endpoint == moto_endpoint else _start(moto_endpoint)


@pytest.fixture
def lcloud(fixture_cloud: LocalCloud) -> Iterator[LocalCloud]:
    """The fixture cloud with empty queues and no recorded handler calls."""
    handlers.CALLS.clear()
    with fixture_cloud.session():
        yield fixture_cloud


@pytest.fixture
def lmoto(fixture_moto_cloud: LocalCloud) -> Iterator[LocalCloud]:
    """`lcloud` on the in-process moto."""
    handlers.CALLS.clear()
    with fixture_moto_cloud.session():
        yield fixture_moto_cloud
