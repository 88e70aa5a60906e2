"""Shared bits of the TAXII and STIX tests."""

from __future__ import annotations

from pathlib import Path

from stix2validator import ValidationOptions, validate_instance

from app.interop import service
from app.interop.taxii import TAXII_MEDIA_TYPE

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
