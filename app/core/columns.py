"""A column holding one enum's values: a plain VARCHAR in the schema, the member in the code."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import String, Table, inspect
from sqlalchemy.engine import Dialect
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
