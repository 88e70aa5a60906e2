"""STIX 2.1 mapping of alerts: a `report` each, `seized-item` SDOs, a `location`, identities.

Plain dictionaries, so the service does not depend on the `stix2` library at run time;
`app/interop/stix2_registration.py` teaches `stix2` our custom object and extension, and
the JSON Schemas in `app/interop/schemas/` define them for `stix2-validator`.

Ids: `report--<alert id>`, `location--<alert id>`, `seized-item--<item id>`,
`relationship--<item id>` (one `located-at` per item), so that a STIX id always leads
back to one alert; agencies are `identity--<UUIDv5 of the agency id>`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from app.alerts.schemas import AlertRead, ItemRead
from app.core.types import to_utc
from app.sharing import markings
from app.sharing.handling import AlertKind, AlertStatus, Tlp

SPEC_VERSION = "2.1"
STIX_MEDIA_TYPE = "application/stix+json;version=2.1"
NAMESPACE = uuid.UUID("d7cd4e82-b745-57a9-8335-44a900497867")  # uuid5(URL, urn:tracewire:stix)
EXTENSION_ID = "extension-definition--18955755-1974-4af1-b67e-85e6ec262497"
ITEM_TYPE = "seized-item"
# When the extension definition (and its schema) was published; bump with the schema.
EXTENSION_CREATED = "2026-11-30T00:00:00.000Z"
EXTENSION_VERSION = "1.0.0"

REPORT_TYPES = {
    AlertKind.seized_weapon: "weapon-seizure",
    AlertKind.trace_request: "firearm-trace-request",
    AlertKind.suspicious_procurement: "suspicious-procurement",
}
KIND_OF_REPORT_TYPE = {v: k for k, v in REPORT_TYPES.items()}

# The official FIRST TLP 2.0 marking definitions (not the TLP 1.0 ones `stix2` ships):
# one table, app/sharing's, for what we write and what we read back.
TLP2_EXTENSION_ID = markings.TLP2_EXTENSION_ID
TLP2_MARKING_IDS = markings.TLP2_MARKING_IDS


def timestamp(at: datetime) -> str:
    """A STIX timestamp: UTC, millisecond precision, `Z`."""
    # isoformat, not strftime: "%Y" does not pad years before 1000 to four digits.
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def precise_timestamp(at: datetime) -> str:
    """A TAXII `date_added`: UTC, microsecond precision, `Z`."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_timestamp(text: str) -> datetime:
    """A STIX/TAXII timestamp back to an aware datetime; ValueError when it is not one."""
    at = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    return to_utc(at)  # ValueError, not OverflowError, for an offset UTC cannot hold


def identity_id(agency_id: uuid.UUID) -> str:
    """The deterministic STIX identity id of an agency."""
    return f"identity--{uuid.uuid5(NAMESPACE, f'agency:{agency_id}')}"


PLATFORM_IDENTITY_ID = f"identity--{uuid.uuid5(NAMESPACE, 'platform:tracewire')}"


def tlp_marking(tlp: Tlp) -> dict[str, Any]:
    """The official TLP 2.0 marking-definition object for `tlp`."""
    return {
        "type": "marking-definition",
        "spec_version": SPEC_VERSION,
        "id": TLP2_MARKING_IDS[tlp],
        "created": "2022-10-01T00:00:00.000Z",
        "name": f"TLP:{tlp.value.upper()}",
        "extensions": {
            TLP2_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": tlp.value}
        },
    }


def platform_identity() -> dict[str, Any]:
    """The identity that publishes Tracewire's extension definition."""
    return {
        "type": "identity",
        "spec_version": SPEC_VERSION,
        "id": PLATFORM_IDENTITY_ID,
        "created": EXTENSION_CREATED,
        "modified": EXTENSION_CREATED,
        "name": "Tracewire",
        "identity_class": "system",
    }


def extension_definition() -> dict[str, Any]:
    """The one extension definition: the `seized-item` SDO and the alert property extension."""
    return {
        "type": "extension-definition",
        "spec_version": SPEC_VERSION,
        "id": EXTENSION_ID,
        "created_by_ref": PLATFORM_IDENTITY_ID,
        "created": EXTENSION_CREATED,
        "modified": EXTENSION_CREATED,
        "name": "Tracewire alerts and seized items",
        "description": (
            "New SDO `seized-item` (a weapon, part, ammunition lot, UAS or IED component or "
            "precursor) and a property extension of `report` carrying a Tracewire alert's "
            "own fields (kind, status, handling, kind-specific details)."
        ),
        "schema": (
            f"JSON Schema: {EXTENSION_ID}.json and {ITEM_TYPE}.json, served by every "
            "Tracewire server under /stix/schemas/"
        ),
        "version": EXTENSION_VERSION,
        "extension_types": ["new-sdo", "property-extension"],
    }


def agency_identity(
    agency_id: uuid.UUID, name: str, country: str, type_: str, created: datetime
) -> dict[str, Any]:
    """An agency as a STIX identity."""
    return {
        "type": "identity",
        "spec_version": SPEC_VERSION,
        "id": identity_id(agency_id),
        "created_by_ref": PLATFORM_IDENTITY_ID,
        "created": timestamp(created),
        "modified": timestamp(created),
        "name": name,
        "identity_class": "organization",
        "sectors": ["government-national"],
        "description": f"{type_} agency, {country}",
    }


def _common(alert: AlertRead, type_: str, id_: uuid.UUID) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": type_,
        "spec_version": SPEC_VERSION,
        "id": f"{type_}--{id_}",
        "created_by_ref": identity_id(alert.originator_agency_id),
        "created": timestamp(alert.created_at),
        "modified": timestamp(alert.updated_at),
    }
    if alert.status == AlertStatus.withdrawn:
        obj["revoked"] = True
    tlp = alert.handling.tlp if alert.handling is not None else alert.tlp
    if tlp is not None:
        obj["object_marking_refs"] = [TLP2_MARKING_IDS[Tlp(tlp)]]
    return obj


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != [] and v != ""}


def item_object(alert: AlertRead, item: ItemRead) -> dict[str, Any]:
    """One item of an alert as a `seized-item` SDO."""
    name = " ".join(p for p in (item.make, item.model) if p) or str(item.category)
    return _common(alert, ITEM_TYPE, item.id) | _drop_none(
        {
            "name": name,
            "category": str(item.category),
            "make": item.make,
            "model": item.model,
            "calibre": item.calibre,
            "item_type": item.type,
            "country_of_manufacture": item.country_of_manufacture,
            "year_of_manufacture": item.year,
            "serial_number": item.serial_raw,
            "serial_status": str(item.serial_status),
            "serial_key": item.serial_key,
            "markings": [_drop_none(dict(m)) for m in item.markings] or None,
            "lot_number": item.lot,
            "quantity": item.quantity,
            "unit": str(item.unit),
            "extensions": {EXTENSION_ID: {"extension_type": "new-sdo"}},
        }
    )


def location_object(alert: AlertRead) -> dict[str, Any]:
    """Where the alert happened: its country, and the place and coordinates when given."""
    place = alert.location or {}
    return _common(alert, "location", alert.id) | _drop_none(
        {
            "name": place.get("text"),
            "country": alert.country,
            "latitude": place.get("lat"),
            "longitude": place.get("lon"),
        }
    )


def relationship_object(alert: AlertRead, item: ItemRead, location_ref: str) -> dict[str, Any]:
    """`seized-item located-at location`."""
    return _common(alert, "relationship", item.id) | {
        "relationship_type": "located-at",
        "source_ref": f"{ITEM_TYPE}--{item.id}",
        "target_ref": location_ref,
    }


def _alert_extension(alert: AlertRead) -> dict[str, Any]:
    handling = alert.handling
    return _drop_none(
        {
            "extension_type": "property-extension",
            "kind": str(alert.kind),
            "status": str(alert.status),
            "alert_version": alert.version,
            "tombstone": alert.tombstone,
            "reference": alert.reference or None,
            "country": alert.country,
            "occurred_at": timestamp(alert.occurred_at) if alert.occurred_at else None,
            "addressed_to_ref": identity_id(alert.addressed_to_agency_id)
            if alert.addressed_to_agency_id
            else None,
            "handling": _drop_none(
                {
                    "tlp": str(handling.tlp),
                    "audience": str(handling.audience),
                    "embargo_until": timestamp(handling.embargo_until)
                    if handling.embargo_until
                    else None,
                    "handling_codes": handling.handling_codes,
                }
            )
            if handling
            else None,
            "details": alert.details or None,
            "withdrawn_at": timestamp(alert.withdrawn_at) if alert.withdrawn_at else None,
            "withdrawal_reason": alert.withdrawal_reason,
        }
    )


def alert_objects(alert: AlertRead) -> list[dict[str, Any]]:
    """The STIX objects of one alert as the reader may see it, the report first.

    A withdrawn alert is a revoked version; a reader who only sees its tombstone gets the
    revoked report alone, with no content; a reader shown only a reference (TLP:RED to an
    API client without `alerts:read:red`) gets the marked report alone, with no content.
    """
    items = alert.items or []
    report = _common(alert, "report", alert.id)
    published = alert.published_at or alert.created_at
    if alert.reference:
        return [
            report
            | {
                "name": "Restricted alert (TLP:RED)",
                "report_types": [REPORT_TYPES[alert.kind]],
                "published": timestamp(published),
                "object_refs": [identity_id(alert.originator_agency_id)],
                # The alert's id under the API (`url` on the REST reference is relative,
                # which STIX does not allow).
                "external_references": [{"source_name": "tracewire", "external_id": str(alert.id)}],
                "extensions": {EXTENSION_ID: _alert_extension(alert)},
            }
        ]
    if alert.tombstone:
        return [
            report
            | {
                "name": "Withdrawn alert",
                "report_types": [REPORT_TYPES[alert.kind]],
                "published": timestamp(published),
                "object_refs": [identity_id(alert.originator_agency_id)],
                "extensions": {EXTENSION_ID: _alert_extension(alert)},
            }
        ]
    location = location_object(alert)
    parts = [item_object(alert, item) for item in items]
    relations = [relationship_object(alert, item, location["id"]) for item in items]
    report |= _drop_none(
        {
            "name": alert.title,
            "description": alert.summary,
            "report_types": [REPORT_TYPES[alert.kind]],
            "published": timestamp(published),
            "labels": alert.tags,
            "object_refs": [location["id"], *(o["id"] for o in parts + relations)],
            "extensions": {EXTENSION_ID: _alert_extension(alert)},
        }
    )
    return [report, location, *parts, *relations]


def bundle(objects: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A STIX bundle of `objects`, each id once."""
    seen: dict[str, dict[str, Any]] = {}
    for obj in objects:
        seen.setdefault(obj["id"], obj)
    return {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": list(seen.values())}


def shared_objects(tlps: Iterable[Tlp]) -> list[dict[str, Any]]:
    """What every bundle carries besides the alerts: the extension and the markings used."""
    marks = [tlp_marking(t) for t in Tlp if t in set(tlps)]
    return [platform_identity(), extension_definition(), *marks]


def stix_uuids(ids: Iterable[str]) -> set[uuid.UUID]:
    """The UUID parts of STIX ids (ignoring anything malformed)."""
    out: set[uuid.UUID] = set()
    for value in ids:
        _, sep, tail = value.partition("--")
        try:
            if sep:
                out.add(uuid.UUID(tail))
        except ValueError:
            continue
    return out
