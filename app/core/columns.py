"""Column helpers: an enum's values as a plain VARCHAR, a model's table and row, IN."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy import String, Table, inspect
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator

E = TypeVar("E", bound=StrEnum)


class EnumText(TypeDecorator[E]):
    """An enum stored as its value in a VARCHAR(`length`) and read back as the member.

    Unlike `sa.Enum` it adds no CHECK constraint and no native type: the column is the
    VARCHAR the migrations create. A value bound to it (a member or its string, in an
    insert, an update or a comparison) is checked against the enum and sent as the string.
    """

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        # Both attributes are named after the arguments: they make up the cache key.
        self.enum = enum
        self.length = length

    @property
    def python_type(self) -> type[E]:
        return self.enum

    def process_bind_param(self, value: E | str | None, _dialect: Dialect) -> str | None:
        if value is None:
            return None
        return self.enum(value).value

    def process_result_value(self, value: Any, _dialect: Dialect) -> E | None:
        if value is None:
            return None
        return self.enum(value)


def table_of(model: type[Any]) -> Table:
    """The Core table a SQLModel table class maps (for multi-row statements)."""
    table = inspect(model).local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} does not map a table")
    return table


def values_of(obj: object, table: Table) -> dict[str, Any]:
    """`obj`'s attribute for every column of `table`: its row, for a Core INSERT."""
    return {c.name: getattr(obj, c.name) for c in table.columns}


def among(column: Any, values: Iterable[Any], dialect: str) -> ColumnElement[bool]:
    """`column IN (values)`. On PostgreSQL one array parameter (`= ANY($1)`, which the
    column's index serves as it serves IN), so the SQL is the same for any number of
    values: SQLAlchemy renders an IN list again for every execution (for a batch's 2,500
    serial keys, a tenth of its CPU) and PostgreSQL prepares every length anew."""
    values = list(values)
    if dialect == "postgresql":
        array = sa.bindparam(None, values, type_=postgresql.ARRAY(column.type))
        return cast("ColumnElement[bool]", column == sa.any_(array))
    return cast("ColumnElement[bool]", column.in_(values))
