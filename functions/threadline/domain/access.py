"""What a widget key may do beyond what an admin key may: its origins and its request rate.

Which routes a widget key may call is an HTTP matter and lives in one table (api/access.py); this module holds
the rules that do not depend on HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from threadline.domain.errors import Forbidden, RateLimited
from threadline.domain.tenancy import Principal


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `per_minute` requests in one fixed one-minute window of `bucket`."""

    bucket: str
    per_minute: int


class RateCounter(Protocol):
    """Shared request counts (every instance of the app sees the same ones)."""

    def hit(self, limits: list[Limit]) -> int | None:
        """Count one request in each limit's bucket; the seconds until the current window ends when any bucket
        is now over its limit, else None."""
        ...


def check_origin(principal: Principal, origin: str | None) -> None:
    """A widget key is used from a page of one of its origins (a browser sets `Origin` itself); Forbidden else."""
    if not principal.is_widget:
        return
    if origin is None or origin.lower() not in principal.origins:
        raise Forbidden(
            "the request's origin is not allowed for this key (widget keys work only from the origins listed on them)",
            scope=principal.scope,
            origin=origin,
        )


def widget_limits(principal: Principal, client_ip: str, per_key: int, per_ip: int) -> list[Limit]:
    """The buckets a widget key's request counts in: its key, and the client's address (over every widget key,
    so one address cannot spread its requests over many keys). Admin keys count in none."""
    if not principal.is_widget:
        return []
    return [Limit(f"k:{principal.key_id}", per_key), Limit(f"ip:{client_ip}", per_ip)]


def enforce_rate(counter: RateCounter, limits: list[Limit]) -> None:
    """Count the request; RateLimited (with the seconds to wait) when a bucket is over its limit."""
    if not limits:
        return
    retry_after = counter.hit(limits)
    if retry_after is not None:
        raise RateLimited(f"too many requests; retry in {retry_after} s", retry_after)
