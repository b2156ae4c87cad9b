"""When a dead-letter queue is worth telling the operators about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from threadline.domain.sweeper import dead_letter_notice

NOW = datetime(2026, 3, 16, 10, tzinfo=UTC)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("depths", "last", "due"),
    [
        ({"a": 0, "b": 0}, {}, []),
        ({"a": 3}, {}, [("a", 3)]),  # newly filled
        ({"a": 3}, {"a": (3, NOW - timedelta(hours=2))}, []),  # unchanged since the last notice
        ({"a": 2}, {"a": (3, NOW - timedelta(hours=2))}, []),  # shrinking (someone is redriving)
        ({"a": 4}, {"a": (3, NOW - timedelta(minutes=15))}, [("a", 4)]),  # grown
        ({"a": 3}, {"a": (3, NOW - timedelta(days=1))}, [("a", 3)]),  # still full a day later
        ({"b": 1, "a": 1}, {}, [("a", 1), ("b", 1)]),
    ],
)
def test_dead_letter_notice(
    depths: dict[str, int], last: dict[str, tuple[int, datetime]], due: list[tuple[str, int]]
) -> None:
    assert dead_letter_notice(depths, last, NOW) == due
