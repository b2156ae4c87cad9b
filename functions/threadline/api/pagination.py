"""The API side of pagination: the `limit` and `cursor` query parameters and the page every list returns."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from threadline.domain.pagination import DEFAULT_LIMIT, MAX_CURSOR_CHARS, MAX_LIMIT, Page, PageRequest

ItemT = TypeVar("ItemT", bound=BaseModel)


class PagePublic(BaseModel, Generic[ItemT]):
    """One page of a list; pass `next_cursor` back as `cursor` for the next one (null: this was the last)."""

    model_config = ConfigDict(from_attributes=True)

    results: list[ItemT]
    next_cursor: str | None = Field(description="the `cursor` of the next page; null at the end")

    @classmethod
    def of(cls, page: Page[Any]) -> PagePublic[ItemT]:
        """From a domain page, each item built from its domain object's attributes."""
        return cls.model_validate(page, from_attributes=True)


async def page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=MAX_CURSOR_CHARS, description="`next_cursor` of the previous page")
    ] = None,
) -> PageRequest:
    """The page a list route is asked for; a malformed cursor is a 422 naming `cursor` (async: it never blocks)."""
    return PageRequest.of(limit, cursor)


PageDep = Annotated[PageRequest, Depends(page_request)]
