"""STIX reports pushed in over TAXII, mapped to alert posts (`AlertCreate`)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import TypeAdapter, ValidationError

from app.alerts.schemas import AlertCreate
from app.interop.stix import EXTENSION_ID, ITEM_TYPE, KIND_OF_REPORT_TYPE
from app.sharing.handling import AlertKind

_ALERT_CREATE: TypeAdapter[Any] = TypeAdapter(AlertCreate)
_TAG = re.compile(r"^[^\s,][^,]{0,59}$")
_ITEM_FIELDS = {
    "category": "category",
    "make": "make",
    "model": "model",
    "calibre": "calibre",
    "item_type": "type",
    "country_of_manufacture": "country_of_manufacture",
    "year_of_manufacture": "year",
    "serial_number": "serial_raw",
    "serial_status": "serial_status",
    "markings": "markings",
    "lot_number": "lot",
    "quantity": "quantity",
    "unit": "unit",
}


class NotImportable(ValueError):
    """A report that cannot become an alert; the message says why."""


def marking_tokens(report: dict[str, Any], index: dict[str, dict[str, Any]]) -> list[str]:
    """Every marking on the report and on the pushed objects it refers to (all stored with it).

    Object markings, granular markings and our extension's own `handling.tlp` all count:
    `app/sharing/markings` takes the strictest. A malformed marking property refuses the
    report rather than being read as no marking.
    """
    refs = [r for r in as_list(report.get("object_refs")) if isinstance(r, str)]
    tokens: list[str] = []
    for obj in [report, *(index[r] for r in refs if r in index)]:
        tokens += _object_markings(obj)
    handling = _extension(report).get("handling")
    if handling is not None:
        tlp = handling.get("tlp") if isinstance(handling, dict) else handling
        if not isinstance(tlp, str | None):
            raise NotImportable("extension handling: an object whose tlp is a TLP name")
        if tlp is not None:
            tokens.append(f"tlp:{tlp}")
    return list(dict.fromkeys(tokens))


def _object_markings(obj: dict[str, Any]) -> list[str]:
    where = obj.get("id")
    refs = obj.get("object_marking_refs", [])
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise NotImportable(f"{where}: object_marking_refs must be a list of marking ids")
    granular = obj.get("granular_markings", [])
    if not isinstance(granular, list) or not all(isinstance(g, dict) for g in granular):
        raise NotImportable(f"{where}: granular_markings must be a list of objects")
    tokens = list(refs)
    for marking in granular:
        ref = marking.get("marking_ref")
        if ref is None and isinstance(marking.get("lang"), str):
            continue  # a language marking says nothing about who may read
        if not isinstance(ref, str):
            raise NotImportable(f"{where}: every granular marking needs a marking_ref")
        tokens.append(ref)
    return tokens


def report_kind(report: dict[str, Any]) -> AlertKind | None:
    """The alert kind a report stands for: our extension's `kind`, else its `report_types`."""
    extension = _extension(report)
    kind = extension.get("kind")
    if isinstance(kind, str) and kind in {k.value for k in AlertKind}:
        return AlertKind(kind)
    for value in as_list(report.get("report_types")):
        if isinstance(value, str) and value in KIND_OF_REPORT_TYPE:
            return KIND_OF_REPORT_TYPE[value]
    return None


def alert_create(
    report: dict[str, Any], index: dict[str, dict[str, Any]], *, only_kind: AlertKind | None
) -> Any:
    """The alert post for a STIX report; its items and place come from the objects it refers to."""
    kind = report_kind(report)
    if kind is None:
        raise NotImportable(
            "neither the Tracewire extension nor report_types names an alert kind "
            "(weapon-seizure, firearm-trace-request, suspicious-procurement)"
        )
    if only_kind is not None and kind is not only_kind:
        raise NotImportable(f"this collection takes {only_kind.value} reports only")
    extension = _extension(report)
    refs = [r for r in as_list(report.get("object_refs")) if isinstance(r, str)]
    items = [index[r] for r in refs if r.startswith(f"{ITEM_TYPE}--") and r in index]
    places = [index[r] for r in refs if r.startswith("location--") and r in index]
    place = places[0] if places else {}
    country = extension.get("country") or place.get("country")
    body: dict[str, Any] = {
        "kind": kind.value,
        "title": report.get("name"),
        "summary": report.get("description") or "",
        "country": country.upper() if isinstance(country, str) else country,
        "tags": [t for t in as_list(report.get("labels")) if isinstance(t, str) and _TAG.match(t)],
        "items": [_item(i) for i in items],
        "details": extension.get("details") or {},
        "publish": True,
    }
    if extension.get("occurred_at"):
        body["occurred_at"] = extension["occurred_at"]
    if place.get("name"):
        body["location"] = {
            "text": place["name"],
            "lat": place.get("latitude"),
            "lon": place.get("longitude"),
        }
    try:
        return _ALERT_CREATE.validate_python(body)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'report'}: {e['msg']}"
            for e in exc.errors()[:5]
        ]
        raise NotImportable("; ".join(problems)) from exc


def as_list(value: object) -> list[Any]:
    """A list property of a pushed object, or an empty list when it is anything else."""
    return value if isinstance(value, list) else []


def _extension(report: dict[str, Any]) -> dict[str, Any]:
    extensions = report.get("extensions")
    found = extensions.get(EXTENSION_ID) if isinstance(extensions, dict) else None
    return found if isinstance(found, dict) else {}


def _item(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        ours: obj[theirs] for theirs, ours in _ITEM_FIELDS.items() if obj.get(theirs) is not None
    }
