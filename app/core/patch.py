"""PATCH bodies: the fields a request set, explicit nulls refused, copied onto a row."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from app.core.errors import InvalidInput


def changes_of(data: BaseModel, *, not_null: Iterable[str] = ()) -> dict[str, Any]:
    """The fields a PATCH body sets; 422 naming the field for a null on a `not_null` field."""
    changes = data.model_dump(exclude_unset=True)
    # An update model makes every field optional, so "absent" and "null" differ only here:
    # absent keeps the stored value, null would blank a column that must have one.
    for field in not_null:
        if field in changes and changes[field] is None:
            raise InvalidInput.on(field, "may not be null")
    return changes


def apply_changes(
    row: object, changes: Mapping[str, Any], *, fields: Iterable[str] | None = None
) -> None:
    """Copy the changed values onto the row: every change, or only those in `fields`."""
    for field in changes if fields is None else fields:
        if field in changes:
            setattr(row, field, changes[field])
