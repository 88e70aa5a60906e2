"""Rows of several tables in one statement, the same SQL whatever their number.

On PostgreSQL, `WITH w0 AS (INSERT INTO a (c, …) SELECT c, … FROM json_populate_recordset(
NULL::a, :p0)), w1 AS (…) SELECT x` writes every row of several tables in one round trip,
each table's rows bound as one JSON array (the foreign keys are checked at the end of the
statement, when every row is there). The SQL depends on the tables and their columns only,
never on how many rows there are, so it is rendered once per shape and PostgreSQL prepares
it once per connection: a batch of 500 alerts is the statement of one alert, and no batch
comes near the protocol's limit of 32,767 parameters. SQLite has no such function; there
each table's rows are one executemany, in order.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.columns import EnumText

Rows = Sequence[Mapping[str, Any]]
Parts = Sequence[tuple[sa.Table, Rows]]


async def insert_all(session: AsyncSession, parts: Parts, *, select: str | None = None) -> None:
    """Write every row of `parts`, in order (tables without rows are left out); on
    PostgreSQL in one statement that then selects `select` (trusted SQL, e.g. a
    `pg_notify`). All rows of one table have the same keys, column names of the table."""
    given = [(table, rows) for table, rows in parts if rows]
    if not given and select is None:
        return
    conn = await session.connection()
    if conn.dialect.name != "postgresql":
        for table, rows in given:
            await conn.execute(sa.insert(table), list(rows))
        return
    shape = (select or "1", *((t, tuple(rows[0])) for t, rows in given))
    for table, rows in given:
        _check_enums(table, rows)
    params = {f"p{i}": _json(rows) for i, (_table, rows) in enumerate(given)}
    await conn.execute(_statement(shape), params)


@lru_cache(maxsize=256)
def _statement(shape: tuple[Any, ...]) -> sa.TextClause:
    select, *tables = shape
    ctes: list[str] = []
    for i, (table, columns) in enumerate(tables):
        names = ", ".join(f'"{c}"' for c in columns)
        values = ", ".join(_value(table.c[c]) for c in columns)
        rows = f'json_populate_recordset(NULL::"{table.name}", CAST(:p{i} AS json))'
        # Names from the table metadata, values bound: nothing of the caller is spliced in.
        ctes.append(f'w{i} AS (INSERT INTO "{table.name}" ({names}) SELECT {values} FROM {rows})')  # noqa: S608
    binds = [sa.bindparam(f"p{i}", type_=sa.Text) for i in range(len(tables))]
    head = f"WITH {', '.join(ctes)} " if ctes else ""
    return sa.text(f"{head}SELECT {select}").bindparams(*binds)


def rows_cte(table: sa.Table, rows: Rows, name: str) -> sa.CTE:
    """PostgreSQL: the INSERT of `rows` into `table` as a CTE, to add to a statement that
    is sent anyway (a data-modifying CTE runs once, whether or not the statement reads it);
    the rows bound as one JSON array, as `insert_all` binds them."""
    _check_enums(table, rows)
    columns = list(rows[0])
    source = sa.func.json_populate_recordset(
        sa.literal_column(f'NULL::"{table.name}"'),
        sa.cast(sa.bindparam(f"{name}_rows", _json(rows), type_=sa.Text), sa.JSON),
    ).table_valued()
    values: list[sa.ColumnClause[Any]] = [sa.literal_column(_value(table.c[c])) for c in columns]
    return sa.insert(table).from_select(columns, sa.select(*values).select_from(source)).cte(name)


def _check_enums(table: sa.Table, rows: Rows) -> None:
    """Refuse a value outside its column's enum, as `EnumText` does when it binds one
    (the JSON rows bypass the column types' bind processing)."""
    for column in table.columns:
        if isinstance(column.type, EnumText) and column.name in rows[0]:
            members = column.type.enum
            for row in rows:
                if row[column.name] is not None:
                    members(row[column.name])


def _value(column: sa.Column[Any]) -> str:
    """A column's value in the SELECT: a JSON column's None is JSON `null`, as the ORM and
    Core INSERTs store it (`JSON.none_as_null` is off), never SQL NULL."""
    if isinstance(column.type, sa.JSON) and not column.type.none_as_null:
        return f"COALESCE(\"{column.name}\", 'null'::json)"
    return f'"{column.name}"'


def _json(rows: Rows) -> str:
    # UUIDs, enums and lists in C; a character PostgreSQL cannot store (NUL, written
    # \u0000) is refused by the database as a data exception (SQLSTATE 22P05), as it is
    # when bound as a parameter.
    return orjson.dumps(rows, default=_plain, option=orjson.OPT_PASSTHROUGH_DATETIME).decode()


def _plain(value: object) -> str:
    if isinstance(value, uuid.UUID):  # asyncpg's own UUID class, read from a row
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:  # as app/core/types.UTCDateTime refuses them
            raise ValueError("naive datetimes are not stored; give a time zone")
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a column value")
