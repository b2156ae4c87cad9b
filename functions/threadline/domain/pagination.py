"""Keyset pagination, the one way every list pages: a cursor, a page request and a page.

Every list is ordered by a sort key (a time, or a name) and then an id, both unique together, and a page
continues strictly after the last row of the previous one. The cursor handed to clients is that row's
(key, id), opaque (base64url of JSON); a cursor that does not decode is InvalidInput naming `cursor`.
Repositories are asked for `limit + 1` rows: the extra row only says whether a next page exists.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from threadline.domain.errors import InvalidInput
from threadline.domain.instants import out_of_range
from threadline.domain.text import unstorable_reason

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR_CHARS = 300

T = TypeVar("T")
SortKey = datetime | str


@dataclass(frozen=True, slots=True)
class Cursor:
    """The position after one row: its sort key (a time or a text) and its id."""

    key: SortKey
    id: str

    def encode(self) -> str:
        """Opaque to clients: base64url (unpadded) of `["t"|"s", key, id]`."""
        kind, key = ("t", self.key.isoformat()) if isinstance(self.key, datetime) else ("s", self.key)
        raw = json.dumps([kind, key, self.id], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """A cursor from `encode`; InvalidInput for anything else: a time without a zone or outside 1970-2100,
        an id that is not a UUID after a time, text Postgres cannot store (a crafted cursor was a 500)."""
        try:
            if len(token) > MAX_CURSOR_CHARS:
                raise ValueError("too long")
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            kind, key, ident = json.loads(raw)
            if kind == "t" and isinstance(key, str) and isinstance(ident, str):
                at = datetime.fromisoformat(key)
                if at.tzinfo is None or out_of_range(at):
                    raise ValueError("cursor time has no zone or is out of range")
                # Rows sorted by time continue after a row id, a UUID (compared as one in SQL).
                return cls(at, str(UUID(ident)))
            if kind == "s" and isinstance(key, str) and isinstance(ident, str):
                if unstorable_reason(key) or unstorable_reason(ident):
                    raise ValueError("cursor holds text that cannot be stored")
                return cls(key, ident)
            raise ValueError("unknown cursor kind")
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidInput("invalid cursor: pass back a next_cursor as it was given", field="cursor") from exc

    @classmethod
    def after(cls, key: SortKey, ident: object) -> Cursor:
        """The cursor after a row with this sort key and id."""
        return cls(key, str(ident))


@dataclass(frozen=True, slots=True)
class PageRequest:
    """How many rows, and after which one (None: the first page)."""

    limit: int = DEFAULT_LIMIT
    after: Cursor | None = None

    @classmethod
    def of(cls, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> PageRequest:
        """Validate a limit (1-200) and decode a cursor; InvalidInput naming the field otherwise."""
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be 1-{MAX_LIMIT}", field="limit")
        return cls(limit, Cursor.decode(cursor) if cursor else None)

    @property
    def fetch(self) -> int:
        """Rows to ask the repository for: one more than the page, to know whether another page follows."""
        return self.limit + 1


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page, in list order, and the cursor of the next page (None at the end)."""

    results: list[T]
    next_cursor: str | None


FIRST_PAGE = PageRequest()


def page_of(rows: Sequence[T], request: PageRequest, key: Callable[[T], Cursor]) -> Page[T]:
    """The page from the `request.fetch` rows a repository returned (the last one only tells that more exist)."""
    if len(rows) <= request.limit:
        return Page(list(rows), None)
    results = list(rows[: request.limit])
    return Page(results, key(results[-1]).encode())


def page_in_memory(
    items: Sequence[T], request: PageRequest, key: Callable[[T], Cursor], descending: bool = False
) -> Page[T]:
    """A page of a short list read whole (a project's categories, keys, rules, metrics), with the same cursors.

    `items` must already be in list order; rows at or before the cursor are skipped, as the SQL keyset does.
    """
    after = request.after
    if after is not None:

        def beyond(item: T) -> bool:
            position = key(item)
            mine, theirs = (position.key, position.id), (after.key, after.id)
            try:
                return mine < theirs if descending else mine > theirs
            except TypeError:  # a cursor of another list (a text key against a time): nothing follows it
                return False

        items = [item for item in items if beyond(item)]
    return page_of(items[: request.fetch], request, key)
