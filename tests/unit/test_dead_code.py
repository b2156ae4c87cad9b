"""The dead-code lint (`infra/build/dead_code.py`, run by `make lint` over the whole repository)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.build.dead_code import unused

pytestmark = pytest.mark.unit


def test_a_definition_nothing_uses_is_named_and_the_used_ones_are_not(tmp_path: Path) -> None:
    # Given a package with a used function, a route, a Lambda handler, and a function and class nobody uses
    package = tmp_path / "threadline"
    package.mkdir()
    (package / "core.py").write_text(
        "def used() -> int:\n    return 1\n\n\n"
        "def orphan() -> int:\n    return used()\n\n\n"
        "class Lonely:\n    pass\n\n\n"
        "def lambda_handler(event: object, context: object) -> int:\n    return used()\n\n\n"
        "@router.get('/x')\ndef route() -> int:\n    return 2\n"
    )
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_core.py").write_text("from threadline.core import used\n\nassert used() == 1\n")

    # When the lint reads the package and its tests
    found = unused(package, [package, tests])

    # Then exactly the orphan and the class are named, with their places
    assert found == ["threadline/core.py:5: unused function orphan", "threadline/core.py:9: unused class Lonely"]
