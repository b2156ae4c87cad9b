"""IANA timezone names, checked against the tz database (the `tzdata` package ships it to Lambda)."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from threadline.domain.errors import InvalidInput

# The system tz database can add files that are not zones a person would choose (or Postgres would know).
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_ZONES


def parse_timezone(name: str) -> ZoneInfo:
    """The zone for an IANA name such as `Europe/Paris`; raises InvalidInput for anything else."""
    # Checking the catalogue first rejects paths and names like "localtime" that ZoneInfo would also open.
    if name not in _known():
        raise InvalidInput(f"unknown timezone {name!r}: use an IANA name such as 'Europe/Paris'", field="timezone")
    return ZoneInfo(name)
