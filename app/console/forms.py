"""Form helpers: HTML form fields ⇄ the API's request bodies, and errors next to fields."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError, create_model
from starlette.datastructures import FormData

from app.alerts.schemas import AlertRead
from app.core.errors import AppError, FieldError, InvalidInput
from app.core.types import OUT_OF_RANGE, parse_utc

Values = dict[str, Any]
M = TypeVar("M", bound=BaseModel)
MULTI = ("handling.recipient_agencies", "handling.recipient_groups", "details.illicit_basis")
ITEM_FIELDS = (
    "category",
    "make",
    "model",
    "calibre",
    "type",
    "serial_raw",
    "serial_status",
    "quantity",
    "unit",
    "country_of_manufacture",
    "year",
)
ITEM_TEXT = ("make", "model", "calibre", "type", "serial_raw", "country_of_manufacture", "year")
MAX_ITEMS = 100
# A row index as the form writes it: ASCII digits, no sign, no leading zero.
ITEM_KEY = re.compile(r"items\.(?P<index>0|[1-9][0-9]{0,5})\.(?P<field>[a-z_]+)")


class FormErrors:
    """Messages by field (dotted path, as the form names it) and the ones for the page."""

    def __init__(
        self, fields: dict[str, str] | None = None, general: list[str] | None = None
    ) -> None:
        self.fields = fields or {}
        self.general = general or []

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)

    def get(self, name: str) -> str | None:
        """The message for one field, if any."""
        return self.fields.get(name)

    def all(self) -> list[tuple[str | None, str]]:
        """Every message, for the summary at the top of the form."""
        return [(None, m) for m in self.general] + list(self.fields.items())


def errors_of(exc: AppError | ValidationError) -> FormErrors:
    """Field messages from a domain error or a validation error of a request body.

    Both name fields as the form does (`details.addressed_to`); a field in the URL's path
    or a header is no input of the form, so its message is for the page.
    """
    out = FormErrors()
    if isinstance(exc, ValidationError):
        for err in exc.errors():
            message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            path = ".".join(str(p) for p in err.get("loc", ()))
            if path:
                out.fields.setdefault(path, message)
            else:
                out.general.append(message)
        return out
    for problem in exc.field_errors or []:
        if problem.location in ("path", "header") or not problem.field:
            out.general.append(problem.message)
        else:
            out.fields.setdefault(problem.field, problem.message)
    if not out:
        out.general.append(exc.detail or exc.title)
    return out


def values_of(form: FormData) -> Values:
    """The submitted fields, for showing the form again."""
    values: Values = {}
    for key in form:
        if key == "csrf_token":
            continue
        if key in MULTI:
            values[key] = [v for v in form.getlist(key) if isinstance(v, str)]
        else:
            value = form.get(key)
            values[key] = value.strip() if isinstance(value, str) else ""
    return values


def _item_index(key: str) -> int | None:
    """The row of an `items.<n>.<field>` key the form can read, else None."""
    match = ITEM_KEY.fullmatch(key)
    if match is None or match["field"] not in ITEM_FIELDS:
        return None
    index = int(match["index"])
    return index if index < MAX_ITEMS else None


def item_count(values: Values) -> int:
    """How many item rows the form had (keys it cannot read count for none)."""
    indexes = [i for i in map(_item_index, values) if i is not None]
    return max(indexes, default=-1) + 1


def unreadable(values: Values) -> dict[str, str]:
    """The form's item fields that name no row and field of this form, with why."""
    out: dict[str, str] = {}
    for key in values:
        if key.startswith("items.") and _item_index(key) is None:
            match = ITEM_KEY.fullmatch(key)
            out[key] = (
                f"At most {MAX_ITEMS} items."
                if match and match["field"] in ITEM_FIELDS
                else "Not a field of this form."
            )
    return out


def instant(raw: str, field: str) -> datetime:
    """A form's date (YYYY-MM-DD, as midnight UTC) or date-time with an offset, in UTC;
    422 naming `field` when it is neither or out of range."""
    text = raw.strip()
    try:
        return parse_utc(text + "T00:00:00Z" if len(text) == 10 else text)
    except ValueError as exc:
        message = str(exc) if str(exc) == OUT_OF_RANGE else "Give a date (YYYY-MM-DD)."
        raise InvalidInput.on(field, message) from exc


def _text(values: Values, key: str) -> str | None:
    value = values.get(key)
    return value if isinstance(value, str) and value else None


def _date(values: Values, key: str) -> str | None:
    value = _text(values, key)
    if value and len(value) == 10:
        return value + "T00:00:00Z"  # a date input; the API takes an aware datetime
    return value


def _lines(values: Values, key: str) -> list[str]:
    return [line.strip() for line in (_text(values, key) or "").splitlines() if line.strip()]


def _items(values: Values) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for n in range(item_count(values)):
        row = {f: _text(values, f"items.{n}.{f}") for f in ITEM_FIELDS}
        if not any(row[f] for f in ITEM_TEXT):
            continue  # a blank row
        items.append({k: v for k, v in row.items() if v is not None})
    return items


def handling_of(values: Values) -> dict[str, Any] | None:
    """The handling block, or None for the agency's policy default."""
    tlp = _text(values, "handling.tlp")
    if not tlp:
        return None
    handling: dict[str, Any] = {
        "tlp": tlp,
        "audience": _text(values, "handling.audience") or "recipients",
        "recipient_agencies": values.get("handling.recipient_agencies", []),
        "recipient_groups": values.get("handling.recipient_groups", []),
    }
    embargo = _date(values, "handling.embargo_until")
    if embargo:
        handling["embargo_until"] = embargo
    return handling


def details_of(kind: str, values: Values) -> dict[str, Any]:
    """The kind-specific `details` body."""
    d = {k.removeprefix("details."): v for k, v in values.items() if k.startswith("details.")}
    if kind == "seized_weapon":
        out = {
            "seized_at": _date(values, "details.seized_at"),
            "seizure_place": _text(values, "details.seizure_place"),
            "circumstances": _text(values, "details.circumstances"),
            "illicit_basis": d.get("illicit_basis", []),
            "custody_reference": _text(values, "details.custody_reference"),
        }
    elif kind == "trace_request":
        out = {
            "addressed_to": _text(values, "details.addressed_to"),
            "circumstances": _text(values, "details.circumstances"),
            "illicit_reason": _text(values, "details.illicit_reason"),
            "intended_use": _text(values, "details.intended_use"),
            "priority": _text(values, "details.priority") or "routine",
            "priority_justification": _text(values, "details.priority_justification"),
            "case_reference": _text(values, "details.case_reference"),
        }
    else:
        party = {
            "role": _text(values, "details.parties.0.role"),
            "name": _text(values, "details.parties.0.name"),
            "country": _text(values, "details.parties.0.country"),
        }
        goods = {
            "description": _text(values, "details.goods.0.description"),
            "hs_code": _text(values, "details.goods.0.hs_code"),
        }
        out = {
            "state": _text(values, "details.state"),
            "indicators": _lines(values, "details.indicators"),
            "parties": [{k: v for k, v in party.items() if v}] if party["name"] else [],
            "goods": [{k: v for k, v in goods.items() if v}] if goods["description"] else [],
        }
    return {k: v for k, v in out.items() if v is not None}


def alert_body(kind: str, values: Values, *, publish: bool = False) -> dict[str, Any]:
    """The body of `POST /alerts` (with `kind`) from the console's alert form; 422 naming
    each field it cannot read (`items.x.category`) rather than guessing."""
    refused = unreadable(values)
    if refused:
        raise InvalidInput(
            "The form has fields it cannot read.",
            errors=[FieldError(field=key, message=text) for key, text in refused.items()],
        )
    body: dict[str, Any] = {
        "kind": kind,
        "title": _text(values, "title") or "",
        "summary": _text(values, "summary") or "",
        "country": (_text(values, "country") or "").upper(),
        "tags": [t.strip() for t in (_text(values, "tags") or "").split(",") if t.strip()],
        "items": _items(values),
        "details": details_of(kind, values),
        "publish": publish,
    }
    occurred = _date(values, "occurred_at")
    if occurred:
        body["occurred_at"] = occurred
    location = _text(values, "location")
    if location:
        body["location"] = {"text": location}
    handling = handling_of(values)
    if handling is not None:
        body["handling"] = handling
    return body


def update_body(kind: str, values: Values) -> dict[str, Any]:
    """The body of `PATCH /alerts/{id}` from the same form."""
    body = alert_body(kind, values)
    for key in ("kind", "publish"):
        body.pop(key)
    body.setdefault("location", None)
    body.setdefault("occurred_at", None)
    return body


def values_from_alert(read: AlertRead) -> Values:
    """The form fields of an existing alert (for editing it)."""
    values: Values = {
        "title": read.title or "",
        "summary": read.summary or "",
        "country": read.country or "",
        "tags": ", ".join(read.tags or []),
        "occurred_at": read.occurred_at.strftime("%Y-%m-%d") if read.occurred_at else "",
        "location": str((read.location or {}).get("text") or ""),
    }
    if read.handling is not None:
        values["handling.tlp"] = read.handling.tlp.value
        values["handling.audience"] = read.handling.audience.value
        values["handling.recipient_agencies"] = [
            str(a) for a in read.handling.recipient_agencies or []
        ]
        values["handling.recipient_groups"] = [str(g) for g in read.handling.recipient_groups or []]
    for n, item in enumerate(read.items or []):
        for field in ITEM_FIELDS:
            value = getattr(item, field)
            values[f"items.{n}.{field}"] = (
                "" if value is None else str(getattr(value, "value", value))
            )
    values.update(_detail_values(read.details or {}))
    return values


def _detail_values(details: dict[str, Any]) -> Values:
    """The form fields of an alert's kind-specific details."""
    values: Values = {}
    for key, value in details.items():
        if isinstance(value, list) and key in ("illicit_basis",):
            values[f"details.{key}"] = [str(v) for v in value]
        elif isinstance(value, list) and key == "indicators":
            values["details.indicators"] = "\n".join(str(v) for v in value)
        elif isinstance(value, list) and key in ("parties", "goods") and value:
            for field, inner in dict(value[0]).items():
                values[f"details.{key}.0.{field}"] = "" if inner is None else str(inner)
        elif isinstance(value, str) and key in ("seized_at",):
            values[f"details.{key}"] = value[:10]
        elif value is not None and not isinstance(value, list | dict):
            values[f"details.{key}"] = str(value)
    return values


def validate(model: type[M], data: dict[str, Any]) -> M:
    """Validate a request body the way the API does (ValidationError on failure)."""
    return model.model_validate(data)


def params_model(name: str, params: dict[str, Any]) -> type[BaseModel]:
    """A model of query or form parameters typed as the API route types them (the
    `Annotated[..., Query(max_length=60)]` aliases it declares): a page refuses what the
    API refuses. Every parameter is optional, as on the route."""
    fields: dict[str, Any] = {p: (annotated, None) for p, annotated in params.items()}
    return create_model(name, **fields)


def parse_sub(form: FormData) -> uuid.UUID | None:
    """The `subscription` field of a form, as a UUID."""
    try:
        return uuid.UUID(str(form.get("subscription") or ""))
    except ValueError:
        return None
