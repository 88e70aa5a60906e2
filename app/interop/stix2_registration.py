"""Teach the `stix2` library Tracewire's custom STIX: import this module before parsing.

`pip install stix2` (or `tracewire[stix]`); the service itself does not need it. One
extension definition is both a new SDO (`seized-item`) and a property extension of
`report`, which `stix2` cannot express as one fixed `extension_type`, so the extension
class accepts either value and the committed JSON Schemas say which goes where.
"""

from __future__ import annotations

from stix2 import CustomExtension, CustomObject
from stix2.properties import (
    BooleanProperty,
    DictionaryProperty,
    EnumProperty,
    FloatProperty,
    IntegerProperty,
    ListProperty,
    ReferenceProperty,
    StringProperty,
    TimestampProperty,
)

from app.interop.stix import EXTENSION_ID, ITEM_TYPE


@CustomExtension(
    EXTENSION_ID,
    [
        (
            "extension_type",
            EnumProperty(["new-sdo", "property-extension"], required=True),
        ),
        ("kind", StringProperty()),
        ("status", StringProperty()),
        ("alert_version", IntegerProperty(min=1)),
        ("tombstone", BooleanProperty()),
        ("country", StringProperty()),
        ("occurred_at", TimestampProperty()),
        ("addressed_to_ref", ReferenceProperty(valid_types="identity", spec_version="2.1")),
        ("handling", DictionaryProperty(spec_version="2.1")),
        ("details", DictionaryProperty(spec_version="2.1")),
        ("withdrawn_at", TimestampProperty()),
        ("withdrawal_reason", StringProperty()),
    ],
)
class TracewireExtension:
    """The alert fields of a `report` (property extension), or the `seized-item` marker."""


@CustomObject(
    ITEM_TYPE,
    [
        ("name", StringProperty(required=True)),
        ("category", StringProperty(required=True)),
        ("make", StringProperty()),
        ("model", StringProperty()),
        ("calibre", StringProperty()),
        ("item_type", StringProperty()),
        ("country_of_manufacture", StringProperty()),
        ("year_of_manufacture", IntegerProperty()),
        ("serial_number", StringProperty()),
        ("serial_status", StringProperty()),
        ("serial_key", StringProperty()),
        ("markings", ListProperty(DictionaryProperty(spec_version="2.1"))),
        ("lot_number", StringProperty()),
        ("quantity", FloatProperty()),
        ("unit", StringProperty()),
    ],
)
class SeizedItem:
    """A weapon, part, ammunition lot, UAS or IED component named in an alert."""


__all__ = ["SeizedItem", "TracewireExtension"]
