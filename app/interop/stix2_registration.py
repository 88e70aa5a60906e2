"""Teach the `stix2` library Tracewire's custom STIX: import this module before parsing.

Self-contained (it needs only `stix2`), so a partner may copy this one file; the service
itself does not need `stix2`. One
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

# The same values as app/interop/stix.py (a test keeps them equal).
EXTENSION_ID = "extension-definition--18955755-1974-4af1-b67e-85e6ec262497"
ITEM_TYPE = "seized-item"


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
        ("reference", BooleanProperty()),
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
