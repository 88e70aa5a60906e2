"""The PATCH helper: set fields only, explicit nulls refused where a column needs a value."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pydantic import BaseModel

from app.core.errors import InvalidInput
from app.core.patch import apply_changes, changes_of


class ThingUpdate(BaseModel):
    name: str | None = None
    note: str | None = None
    size: int | None = None


def test_only_fields_the_body_set_are_changes():
    assert changes_of(ThingUpdate(note=None, size=3), not_null=("name",)) == {
        "note": None,
        "size": 3,
    }


def test_an_explicit_null_on_a_required_field_names_it():
    with pytest.raises(InvalidInput) as caught:
        changes_of(ThingUpdate(name=None), not_null=("name", "size"))
    assert [(e.field, e.message) for e in caught.value.errors] == [("body.name", "may not be null")]


def test_changes_are_copied_onto_the_row_all_or_only_the_listed():
    row = SimpleNamespace(name="a", note="b", size=1)
    apply_changes(row, {"name": "x", "size": 2}, fields=("name", "note"))
    assert (row.name, row.note, row.size) == ("x", "b", 1)
    apply_changes(row, {"note": None, "size": 5})
    assert (row.name, row.note, row.size) == ("x", None, 5)
