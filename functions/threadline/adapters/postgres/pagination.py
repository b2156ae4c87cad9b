"""The SQL of a keyset page: filters from fixed fragments, the cursor predicate, the order and the limit.

Each filter is a fixed fragment, added only when asked for: the planner then sees exactly the predicates that
match one of the keyset indexes. A catch-all `%(x)s IS NULL OR ...` would defeat them in generic plans (a
prepared statement planned once for every combination of filters cannot use an index on a column that may
be unconstrained). Only fragments written here in the code are ever concatenated, never client input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, LiteralString

from threadline.domain.pagination import PageRequest


@dataclass(frozen=True, slots=True)
class Keyset:
    """A listing's order: a sort column (a time or a text), then the id column that breaks ties."""

    key: LiteralString
    id: LiteralString
    descending: bool = True

    @property
    def after(self) -> LiteralString:
        """Rows strictly after the cursor's row, in this order."""
        op: LiteralString = "<" if self.descending else ">"
        return " AND (" + self.key + ", " + self.id + ") " + op + " (%(cursor_key)s, %(cursor_id)s::uuid)"

    @property
    def order(self) -> LiteralString:
        """ORDER BY both columns in the listing's direction, then LIMIT."""
        direction: LiteralString = " DESC" if self.descending else ""
        return " ORDER BY " + self.key + direction + ", " + self.id + direction + " LIMIT %(limit)s"


def page_sql(
    select: LiteralString,
    fragments: Mapping[str, LiteralString],
    filters: Mapping[str, object],
    keyset: Keyset,
    page: PageRequest,
) -> tuple[LiteralString, dict[str, Any]]:
    """One page's query and parameters.

    `select` ends inside a WHERE clause (`... WHERE t.project_id = %(project_id)s`); every filter whose value is
    not None or False adds its fragment (`" AND ..."`, reading the parameter of its own name). The query asks
    for `page.fetch` rows: one more than the page, which tells whether another page follows.
    """
    sql = select
    params: dict[str, Any] = {"limit": page.fetch}
    for name, value in filters.items():
        if value is None or value is False:
            continue
        sql += fragments[name]
        params[name] = value
    if page.after is not None:
        sql += keyset.after
        params["cursor_key"] = page.after.key
        params["cursor_id"] = page.after.id
    return sql + keyset.order, params
