"""Shared bits of the TAXII and STIX tests."""

from __future__ import annotations

from pathlib import Path

from stix2validator import ValidationOptions, validate_instance

from app.interop import service
from app.interop.taxii import TAXII_MEDIA_TYPE
from tests.factories import seizure_body

SCHEMA_DIR = str(Path(__file__).resolve().parents[2] / "app" / "interop" / "schemas")
ALL = f"/taxii2/api/collections/{service.COLLECTIONS[0].id}/"
SEIZURES = f"/taxii2/api/collections/{service.COLLECTIONS[1].id}/"
TRACES = f"/taxii2/api/collections/{service.COLLECTIONS[2].id}/"
ACCEPT = {"Accept": TAXII_MEDIA_TYPE}


def taxii(headers: dict[str, str]) -> dict[str, str]:
    """The caller's headers plus the TAXII Accept header."""
    return {**headers, **ACCEPT}


def validate(bundle: dict) -> None:
    """Assert the bundle is valid STIX 2.1 under the committed schemas."""
    result = validate_instance(bundle, ValidationOptions(version="2.1", schema_dir=SCHEMA_DIR))
    assert result.is_valid, [str(e) for e in result.errors]


def procurement_body() -> dict:
    """A suspicious-procurement alert body."""
    return seizure_body(
        kind="suspicious_procurement",
        title="Attempted purchase of UAS flight controllers",
        items=[{"category": "uas_component", "make": "Acme", "model": "FC-7", "quantity": 40}],
        details={
            "state": "attempted",
            "parties": [{"role": "broker", "name": "Example Trading FZE", "country": "AE"}],
            "goods": [{"description": "Flight controllers", "hs_code": "8526.91", "quantity": 40}],
            "indicators": ["end user unknown"],
        },
    )


def pushed_report(country: str = "KE") -> dict:
    """A TAXII envelope as a partner would push it: a report, its place and item, and extra."""
    return {
        "objects": [
            {
                "type": "report",
                "spec_version": "2.1",
                "id": "report--7f1c0b9e-3a44-4a8e-9d0e-6f7f6c2b1a00",
                "created": "2026-11-29T10:00:00.000Z",
                "modified": "2026-11-29T10:00:00.000Z",
                "name": "Pistol seized at Malaba",
                "published": "2026-11-29T10:00:00.000Z",
                "report_types": ["weapon-seizure"],
                "labels": ["border"],
                "object_refs": [
                    "location--7f1c0b9e-3a44-4a8e-9d0e-6f7f6c2b1a00",
                    "seized-item--0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                ],
            },
            {
                "type": "location",
                "spec_version": "2.1",
                "id": "location--7f1c0b9e-3a44-4a8e-9d0e-6f7f6c2b1a00",
                "created": "2026-11-29T10:00:00.000Z",
                "modified": "2026-11-29T10:00:00.000Z",
                "name": "Malaba border post",
                "country": country,
                "latitude": 0.63,
                "longitude": 34.28,
            },
            {
                "type": "seized-item",
                "spec_version": "2.1",
                "id": "seized-item--0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                "created": "2026-11-29T10:00:00.000Z",
                "modified": "2026-11-29T10:00:00.000Z",
                "name": "Glock 17",
                "category": "small_arm",
                "make": "Glock",
                "model": "17",
                "serial_number": "ABC123",
                "extensions": {
                    "extension-definition--18955755-1974-4af1-b67e-85e6ec262497": {
                        "extension_type": "new-sdo"
                    }
                },
            },
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": "indicator--0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4e",
                "created": "2026-11-29T10:00:00.000Z",
                "modified": "2026-11-29T10:00:00.000Z",
            },
        ]
    }
