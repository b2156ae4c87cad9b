"""The range of times Threadline accepts anywhere one enters: API parameters, cursors and imported CSV rows."""

from __future__ import annotations

from datetime import UTC, datetime

# Interactions happen between the Unix epoch and the end of this century; anything outside is a typo or a
# sentinel (9999-12-31), and a year past 9999 in UTC cannot even be stored or read back (a CSV row at
# 9999-12-31T23:00:00-05:00 broke the thread listing; analytics `from=9999-...` was a 500).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def out_of_range(at: datetime) -> str | None:
    """Why an aware time is refused (outside [EARLIEST, LATEST)), or None when it is accepted."""
    try:
        in_range = EARLIEST <= at < LATEST
    except OverflowError:  # comparing converts to UTC, which can overflow at the ends of the calendar
        in_range = False
    if in_range:
        return None
    return f"must be between {EARLIEST.date().isoformat()} and {LATEST.date().isoformat()} (exclusive)"
