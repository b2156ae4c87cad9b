"""The migrator's file rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from threadline.adapters.postgres.migrate import MigrationError, load_migrations


@pytest.mark.unit
def test_migrations_load_in_version_order(tmp_path: Path) -> None:
    (tmp_path / "0002_b.sql").write_text("SELECT 2;")
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    assert [m.version for m in load_migrations(tmp_path)] == [1, 2]


@pytest.mark.unit
@pytest.mark.parametrize("names", [["0001_a.sql", "0001_b.sql"], ["1_a.sql"], ["0001_Bad-Name.sql"]])
def test_bad_migration_sets_are_rejected(tmp_path: Path, names: list[str]) -> None:
    for name in names:
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError):
        load_migrations(tmp_path)


@pytest.mark.unit
def test_repository_migrations_are_well_formed() -> None:
    migrations = load_migrations(Path(__file__).resolve().parents[2] / "infra" / "db" / "migrations")
    assert migrations and migrations[0].version == 1


@pytest.mark.unit
def test_settings_find_the_repository_migrations_outside_the_artifact() -> None:
    # Given the repository layout (functions/ has no migrations/ folder; `make package` adds one to the artifact)
    from threadline.settings import Settings

    # When the default is resolved
    found = Settings().migrations_dir

    # Then it is infra/db/migrations, which loads
    assert found == Path(__file__).resolve().parents[2] / "infra" / "db" / "migrations"
    assert load_migrations(found)
