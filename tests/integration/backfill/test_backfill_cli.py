"""`threadline seed` and `threadline backfill --all` from the command line, against the local cloud."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from threadline import cli
from threadline.bootstrap import get_container
from threadline.local.cloud import LocalCloud
from threadline.settings import Settings, get_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def operator_env(local_cloud: LocalCloud, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An operator's shell: the database and the AWS endpoint, but no state machine ARN (found by name)."""
    handler_env = {
        "DATABASE_URL": settings.database_url,
        "EMBEDDING_TOKENIZER_PATH": str(settings.embedding_tokenizer_path),
        "BACKFILL_RANGE_SIZE": "400",
    }
    with local_cloud.session(**handler_env):
        for key, value in {**handler_env, "AWS_ENDPOINT_URL": local_cloud.deployment.endpoint}.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("BACKFILL_STATE_MACHINE_ARN", raising=False)
        get_settings.cache_clear()
        get_container.cache_clear()
        yield
    get_settings.cache_clear()
    get_container.cache_clear()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert cli.main(list(argv)) == 0
    output: dict[str, object] = json.loads(capsys.readouterr().out)
    return output


def test_seed_then_backfill_all_from_the_cli(operator_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a database seeded from the command line
    seeded = _run(capsys, "seed", "--threads", "1500", "--projects", "3")
    container = get_container()
    # When every project is backfilled from the command line, following it to the end
    done = _run(capsys, "backfill", "--all", "--wait")
    # Then the seed wrote what it said, and the backfill labelled every unlabelled thread of every project
    with container.db.transaction() as conn:
        row = conn.execute(
            "SELECT count(*) AS threads, count(*) FILTER (WHERE category_id IS NULL) AS unlabelled,"
            " (SELECT count(DISTINCT thread_id) FROM messages) AS with_messages FROM threads"
        ).fetchone()
    assert row is not None
    assert seeded["threads"] == row["threads"] == row["with_messages"] == 1500 and seeded["projects"] == 3
    assert done["state"] == "succeeded" and done["project_id"] is None
    assert row["unlabelled"] == 0 and done["threads_labelled"] == done["threads_planned"] > 1000
