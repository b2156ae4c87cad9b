"""Connections: one pool per process (in Lambda, one lazily opened connection), pgvector registered.

One statement in its own transaction goes through `Database.one`, `all` or `run`, its rows mapped by a
function (`row=`: a feature's mapper, or `class_row(SomeClass)` when the columns are the class's fields) and a
missing row turned into the caller's domain error (`missing=`). Several statements that must see or change
the data together use `transaction()` (or `pipeline()`) and the connection directly.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, overload

import psycopg
from pgvector.psycopg import register_vector
from psycopg import errors as pg_errors
from psycopg.abc import Params
from psycopg.abc import QueryNoTemplate as Query
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from threadline.domain.errors import Conflict, DomainError, InvalidInput, NotFound, Unavailable

Row = dict[str, Any]
T = TypeVar("T")


def class_row(cls: Callable[..., T]) -> Callable[[Row], T]:
    """A row mapper that passes the columns to `cls` as keyword arguments (column names = field names)."""

    def build(row: Row) -> T:
        return cls(**row)

    return build


def _as_row(row: Row) -> Row:
    return row


def _configure(conn: psycopg.Connection[Any]) -> None:
    # Nothing here may change the session: behind RDS Proxy a session-level SET (or any session state) pins
    # the client connection to one database connection for good. Settings a query needs are set with
    # set_config(..., true) inside its own transaction (adapters/postgres/chat.py); RDS Proxy also refuses
    # startup options (`options=-c ...`) in the connection string, so that route is closed too.
    register_vector(conn)
    conn.commit()  # ends the transaction register_vector's type lookup opened


# A connection back in the pool for less than this is handed out again unchecked (see _IdleCheck).
CHECK_IDLE_AFTER_S = 5.0


class _IdleCheck:
    """The pool's check: an empty query (a round trip) only for a connection idle longer than `after_s`.

    Checking every checkout cost each chat four extra round trips (the key, the context, the question, the
    answer), two of them before the first token, and Postgres and the app a statement each. A connection
    that sat idle is the one a server or a proxy may have dropped, or that a Lambda environment thawed
    after minutes, so that one is still checked; one used a moment ago is not.
    """

    def __init__(self, after_s: float) -> None:
        self._after_s = after_s
        self._returned: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = weakref.WeakKeyDictionary()

    def returned(self, conn: psycopg.Connection[Any]) -> None:
        """Note that the connection is going back to the pool now."""
        self._returned[conn] = time.monotonic()

    def check(self, conn: psycopg.Connection[Any]) -> None:
        """Raise if the connection does not answer; skipped for one returned within `after_s`."""
        back = self._returned.get(conn)
        if back is not None and not conn.closed and time.monotonic() - back < self._after_s:
            return
        ConnectionPool.check_connection(conn)


class Database:
    """A small pool of psycopg 3 connections; `transaction()` is the only way in."""

    def __init__(self, url: str, max_size: int = 8, check_idle_after_s: float = CHECK_IDLE_AFTER_S) -> None:
        self.url = url
        # Not the pool's `reset` hook to note returns: with one, psycopg_pool returns every connection through
        # its worker thread (a thread hop per statement batch, and the connection unavailable meanwhile).
        self._idle = _IdleCheck(check_idle_after_s)
        self._pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            open=False,
            configure=_configure,
            check=self._idle.check,
            # No server-side prepared statements (psycopg prepares a query after 5 runs by default): a named
            # statement lives in one backend's session, which RDS Proxy lists among the causes of pinning.
            kwargs={"row_factory": dict_row, "autocommit": False, "prepare_threshold": None},
        )
        self._opened = False

    def _ensure_open(self) -> None:
        if not self._opened:
            self._pool.open(wait=True, timeout=30)
            self._opened = True

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Row]]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        self._ensure_open()
        with wrap_exceptions(), self._pool.connection() as conn:
            try:
                with conn.transaction():
                    yield conn
            finally:
                self._idle.returned(conn)

    @contextmanager
    def pipeline(self) -> Iterator[psycopg.Connection[Row]]:
        """A transaction whose statements travel together: BEGIN, the statements and COMMIT in one round trip.

        Read the cursors after the block: fetching inside it forces an extra round trip.
        """
        self._ensure_open()
        with wrap_exceptions(), self._pool.connection() as conn:
            try:
                with conn.pipeline(), conn.transaction():
                    yield conn
            finally:
                self._idle.returned(conn)

    @overload
    def one(self, sql: Query, params: Params | None = None, *, missing: DomainError) -> Row: ...
    @overload
    def one(self, sql: Query, params: Params | None = None, *, missing: None = None) -> Row | None: ...
    @overload
    def one(self, sql: Query, params: Params | None = None, *, missing: DomainError, row: Callable[[Row], T]) -> T: ...
    @overload
    def one(
        self, sql: Query, params: Params | None = None, *, missing: None = None, row: Callable[[Row], T]
    ) -> T | None: ...
    def one(
        self,
        sql: Query,
        params: Params | None = None,
        *,
        missing: DomainError | None = None,
        row: Callable[[Row], Any] = _as_row,
    ) -> Any:
        """The first row of one statement in its own transaction, mapped by `row`; no row: `missing` is raised
        when given, else None."""
        with self.transaction() as conn:
            found = conn.execute(sql, params).fetchone()
        if found is None:
            if missing is not None:
                raise missing
            return None
        return row(found)

    @overload
    def all(self, sql: Query, params: Params | None = None) -> list[Row]: ...
    @overload
    def all(self, sql: Query, params: Params | None = None, *, row: Callable[[Row], T]) -> list[T]: ...
    def all(self, sql: Query, params: Params | None = None, *, row: Callable[[Row], Any] = _as_row) -> list[Any]:
        """Every row of one statement in its own transaction, each mapped by `row`."""
        with self.transaction() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [row(r) for r in rows]

    def run(self, sql: Query, params: Params | None = None) -> int:
        """One statement in its own transaction, for its effect; returns the rows it affected."""
        with self.transaction() as conn:
            return conn.execute(sql, params).rowcount

    def close(self) -> None:
        """Close every connection."""
        if self._opened:
            self._pool.close()
            self._opened = False


@contextmanager
def wrap_exceptions() -> Iterator[None]:
    """Turn driver errors into domain errors, here and nowhere else (matched on SQLSTATE class, not text)."""
    try:
        yield
    except pg_errors.UniqueViolation as exc:
        raise Conflict("already exists", constraint=_constraint(exc)) from exc
    except pg_errors.ForeignKeyViolation as exc:
        raise NotFound("a referenced item does not exist", constraint=_constraint(exc)) from exc
    except (pg_errors.CheckViolation, pg_errors.NotNullViolation, pg_errors.DataException) as exc:
        raise InvalidInput("invalid value", constraint=_constraint(exc)) from exc
    except (psycopg.OperationalError, pg_errors.AdminShutdown) as exc:
        raise Unavailable("database unavailable") from exc


def _constraint(exc: psycopg.Error) -> str:
    return (exc.diag.constraint_name or "") if exc.diag else ""
