"""The API's one date-time type (`Instant`) and its plain-function twins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from app.core.jsonshape import JsonShapeError, load_bounded
from app.core.types import EARLIEST, LATEST, Instant, parse_utc, to_utc

INSTANT = TypeAdapter(Instant)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-20T10:30:00+02:00", datetime(2026, 11, 20, 8, 30, tzinfo=UTC)),
        ("2026-11-20T08:30:00Z", datetime(2026, 11, 20, 8, 30, tzinfo=UTC)),
        ("2026-11-20t08:30:00z", datetime(2026, 11, 20, 8, 30, tzinfo=UTC)),
        ("2026-11-20 08:30:00-00:00", datetime(2026, 11, 20, 8, 30, tzinfo=UTC)),
        ("2026-11-20T08:30Z", datetime(2026, 11, 20, 8, 30, tzinfo=UTC)),
        ("2026-01-01T10:00:00+23:59", datetime(2025, 12, 31, 10, 1, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", EARLIEST),
        ("0001-01-01T13:59:00+13:59", EARLIEST),
        ("9999-12-31T23:59:59.999999Z", LATEST),
        ("9999-12-31T09:59:59.999999-14:00", LATEST),
        # Fractions past microseconds are cut, never rounded up past the range.
        ("9999-12-31T23:59:59.9999999999Z", LATEST),
        ("2026-01-01T00:00:00." + "1" * 100_000 + "Z", datetime(2026, 1, 1, 0, 0, 0, 111111, UTC)),
        (
            datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))),
            datetime(2026, 1, 1, tzinfo=UTC),
        ),
    ],
)
def test_valid_instants_come_back_in_utc(value, expected):
    parsed = INSTANT.validate_python(value)
    assert parsed == expected and parsed.tzinfo is UTC
    assert INSTANT.validate_json(INSTANT.dump_json(parsed)) == expected


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("9999-12-31T23:59:59-14:00", "datetime_out_of_range"),
        ("9999-12-31T23:59:59.999999-00:01", "datetime_out_of_range"),
        ("0001-01-01T00:00:00+14:00", "datetime_out_of_range"),
        ("0001-01-01T00:00:00.000001+00:01", "datetime_out_of_range"),
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))), "datetime_out_of_range"),
        ("0000-01-01T00:00:00Z", "datetime_parsing"),
        ("10000-01-01T00:00:00Z", "datetime_format"),
        ("2016-12-31T23:59:60Z", "datetime_from_date_parsing"),  # no leap seconds
        ("2026-01-01T24:00:00Z", "datetime_from_date_parsing"),
        ("2026-01-01T00:00:00+24:00", "datetime_from_date_parsing"),
        ("2026-01-01T00:00:00+99:99", "datetime_from_date_parsing"),
        ("2026-02-30T00:00:00Z", "datetime_from_date_parsing"),
        ("2026-01-01T00:00:00", "timezone_aware"),
        (datetime(2026, 1, 1), "timezone_aware"),
        ("2026-01-01", "datetime_format"),
        ("1700000000", "datetime_format"),
        ("20260101T000000Z", "datetime_format"),
        (" 2026-01-01T00:00:00Z", "datetime_format"),
        ("", "datetime_format"),
        (1_700_000_000, "datetime_type"),
        (1.5e9, "datetime_type"),
        (True, "datetime_type"),
        ([], "datetime_type"),
    ],
)
def test_invalid_instants_are_refused_by_kind(value, kind):
    with pytest.raises(ValidationError) as refused:
        INSTANT.validate_python(value)
    assert [e["type"] for e in refused.value.errors()] == [kind]


def test_the_schema_is_a_plain_date_time():
    assert INSTANT.json_schema() == {"type": "string", "format": "date-time"}


@given(
    st.datetimes(
        # Offsets in whole minutes, as RFC 3339 writes them: up to ±23:59.
        timezones=st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m)))
    )
)
def test_any_offset_either_converts_or_is_refused_by_name(at):
    text = at.isoformat()
    try:
        parsed = INSTANT.validate_python(text)
    except ValidationError as refused:
        assert [e["type"] for e in refused.errors()] == ["datetime_out_of_range"]
        return
    assert parsed == at and parsed.tzinfo is UTC
    assert parse_utc(text) == parsed == to_utc(at)


@pytest.mark.parametrize(
    "text",
    ["9999-12-31T23:59:59-14:00", "2026-01-01T00:00:00", "1700000000", "2016-12-31T23:59:60Z"],
)
def test_parse_utc_refuses_with_value_error(text):
    with pytest.raises(ValueError):
        parse_utc(text)


def test_to_utc_refuses_naive_and_overflowing_datetimes():
    with pytest.raises(ValueError, match="offset"):
        to_utc(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="Out of range"):
        to_utc(datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-14))))


# --- JSON the app parses itself ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("[" * 10_000 + "]" * 10_000, "json_too_deep"),
        ("[" * 100_000, "json_too_deep"),
        ('{"a":' * 40 + "1" + "}" * 40, "json_too_deep"),
        ("[" + "0," * 10_001 + "0]", "json_array_too_long"),
        ('"' + "x" * 2000 + '"', "json_too_long"),
        ("{", "json_invalid"),
        (b"\xff\xfe{}", "json_invalid"),
        ('"\ud800"', "json_invalid"),
    ],
)
def test_load_bounded_refuses_by_kind_and_never_recurses(text, kind):
    with pytest.raises(JsonShapeError) as refused:
        load_bounded(text, max_bytes=1000 if kind == "json_too_long" else 1_000_000)
    assert refused.value.kind == kind


def test_load_bounded_reads_what_fits():
    assert load_bounded('{"a": [1, {"b": null}]}', max_bytes=100) == {"a": [1, {"b": None}]}
