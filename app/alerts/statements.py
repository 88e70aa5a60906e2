"""Several multi-row INSERTs as one PostgreSQL statement, rendered once per shape.

`WITH w0 AS (INSERT INTO a (...) VALUES (...), (...)), w1 AS (INSERT INTO b ...) SELECT x`
writes rows of several tables in one round trip (the foreign keys are checked at the end
of the statement, when every row is there). SQLAlchemy does not cache a multi-row
`insert().values([...])` (it is compiled on every execution), so the SQL is rendered here
once per shape (tables, columns, row counts) as a text statement with typed parameters,
which the engine's statement cache then serves.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

Rows = Sequence[Mapping[str, Any]]

_MAX_SHAPES = 256
_rendered: OrderedDict[tuple[object, ...], sa.TextClause] = OrderedDict()


def insert_all(
    parts: Sequence[tuple[sa.Table, Rows]], *, select: str = "1"
) -> tuple[sa.TextClause, dict[str, Any]]:
    """The statement writing every row of `parts` (tables without rows are left out), then
    selecting `select` (trusted SQL), and its parameters. All rows of a table have the
    same keys, the table's column names."""
    given = [(table, rows) for table, rows in parts if rows]
    shape = (select, *((t.name, tuple(rows[0]), len(rows)) for t, rows in given))
    statement = _rendered.get(shape)
    if statement is None:
        statement = _render(given, select)
        _rendered[shape] = statement
        if len(_rendered) > _MAX_SHAPES:
            _rendered.popitem(last=False)
    else:
        _rendered.move_to_end(shape)
    params = {
        f"p{i}_{r}_{c}": value
        for i, (_t, rows) in enumerate(given)
        for r, row in enumerate(rows)
        for c, value in row.items()
    }
    return statement, params


def _render(given: Sequence[tuple[sa.Table, Rows]], select: str) -> sa.TextClause:
    ctes: list[str] = []
    binds: list[sa.BindParameter[Any]] = []
    for i, (table, rows) in enumerate(given):
        columns = list(rows[0])
        names = ", ".join(f'"{c}"' for c in columns)
        values = ", ".join(
            "(" + ", ".join(f":p{i}_{r}_{c}" for c in columns) + ")" for r in range(len(rows))
        )
        # Names from the table metadata, values bound: nothing of the caller is spliced in.
        ctes.append(f'w{i} AS (INSERT INTO "{table.name}" ({names}) VALUES {values})')  # noqa: S608
        binds += [
            sa.bindparam(f"p{i}_{r}_{c}", type_=table.c[c].type)
            for r in range(len(rows))
            for c in columns
        ]
    return sa.text(f"WITH {', '.join(ctes)} SELECT {select}").bindparams(*binds)
