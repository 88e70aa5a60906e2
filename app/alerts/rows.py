"""New alert rows in memory: items, recipients, reader keys and search text, before a write.

Pure: nothing here reads or writes the database. app/alerts/children.py writes what these
build, one alert or a batch of them in the same statements.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.alerts import search
from app.alerts.models import Alert
from app.alerts.schemas import ItemIn
from app.alerts.serials import make_key, serial_key
from app.core.errors import InvalidInput
from app.core.types import new_id
from app.sharing import visibility
from app.sharing.handling import Audience, Handling


class StoredItem(Protocol):
    """An item as stored: a loaded `AlertItem` or the `ItemRow` just written."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def alert_id(self) -> uuid.UUID: ...
    @property
    def position(self) -> int: ...
    @property
    def category(self) -> str: ...
    @property
    def make(self) -> str | None: ...
    @property
    def make_key(self) -> str | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def calibre(self) -> str | None: ...
    @property
    def type(self) -> str | None: ...
    @property
    def country_of_manufacture(self) -> str | None: ...
    @property
    def year(self) -> int | None: ...
    @property
    def serial_raw(self) -> str | None: ...
    @property
    def serial_status(self) -> str: ...
    @property
    def serial_key(self) -> str | None: ...
    @property
    def markings(self) -> list[dict[str, Any]]: ...
    @property
    def lot(self) -> str | None: ...
    @property
    def quantity(self) -> float: ...
    @property
    def unit(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ItemRow:
    """An `alert_item` row as written (a plain row, no ORM object)."""

    id: uuid.UUID
    alert_id: uuid.UUID
    position: int
    category: str
    make: str | None
    make_key: str | None
    model: str | None
    calibre: str | None
    type: str | None
    country_of_manufacture: str | None
    year: int | None
    serial_raw: str | None
    serial_status: str
    serial_key: str | None
    markings: list[dict[str, Any]]
    lot: str | None
    quantity: float
    unit: str


ITEM_COLUMNS = tuple(f for f in ItemRow.__dataclass_fields__ if f not in ("id", "alert_id"))
ITEM_FIELDS = tuple(ItemRow.__dataclass_fields__)  # rows as dicts: shallow, not asdict()


def copied_items(alert_id: uuid.UUID, items: list[StoredItem]) -> list[ItemRow]:
    """Another alert's items as new rows of `alert_id` (a forwarded copy)."""
    return [
        ItemRow(id=new_id(), alert_id=alert_id, **{c: getattr(i, c) for c in ITEM_COLUMNS})
        for i in items
    ]


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert about to be written for the first time, with every row it comes with."""

    alert: Alert
    items: list[ItemRow]
    tags: list[str]
    agencies: list[uuid.UUID]  # named recipients, stored only when audience = recipients
    groups: list[uuid.UUID]


def new_alert(
    alert: Alert, *, items: Sequence[ItemIn | ItemRow], tags: list[str], handling: Handling
) -> NewAlert:
    """The alert's rows (items given, or copied from another alert), its reader keys and
    search text set; refused (422) when an item's match key would not fit its column."""
    item_rows = [
        i if isinstance(i, ItemRow) else item_row(alert.id, position, i)
        for position, i in enumerate(items)
    ]
    agencies, groups = recipients_of(handling)
    alert.reader_keys = visibility.reader_keys(agencies, groups) if agencies or groups else []
    alert.search_text = search_text(alert, item_rows)
    return NewAlert(alert, item_rows, tags, agencies, groups)


def item_fields(row: ItemRow) -> dict[str, Any]:
    """The `alert_item` row of an item, as a Core INSERT takes it (shallow, not asdict())."""
    return {f: getattr(row, f) for f in ITEM_FIELDS}


def recipients_of(handling: Handling) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """The recipient agencies and groups to store for `handling` (none unless named)."""
    if handling.audience is not Audience.recipients:
        return [], []
    return list(dict.fromkeys(handling.recipient_agencies)), list(
        dict.fromkeys(handling.recipient_groups)
    )


# The match keys' columns (alert_item.make_key, .serial_key). A key is the text's NFKC form,
# which a few characters make many times longer (U+FDFA is 18 characters).
KEY_MAX = 255


def _fits(key: str | None, field: str) -> str | None:
    if key is not None and len(key) > KEY_MAX:
        raise InvalidInput.on(field, f"too long to match once normalised (over {KEY_MAX})")
    return key


def item_row(alert_id: uuid.UUID, position: int, item: ItemIn) -> ItemRow:
    return ItemRow(
        id=new_id(),
        alert_id=alert_id,
        position=position,
        category=item.category,
        make=item.make,
        make_key=_fits(make_key(item.make), f"items.{position}.make"),
        model=item.model,
        calibre=item.calibre,
        type=item.type,
        country_of_manufacture=item.country_of_manufacture,
        year=item.year,
        serial_raw=item.serial_raw,
        serial_status=item.serial_status,
        serial_key=_fits(
            serial_key(item.serial_raw, item.serial_status), f"items.{position}.serial_raw"
        ),
        markings=[m.model_dump() for m in item.markings],
        lot=item.lot,
        quantity=item.quantity,
        unit=item.unit,
    )


def search_text(alert: Alert, items: Sequence[StoredItem]) -> str:
    parts: list[str | None] = [alert.title, alert.summary, " ".join(alert.tags)]
    if alert.location:
        parts.append(str(alert.location.get("text") or ""))
    for item in items:
        parts += [item.make, item.model, item.calibre, item.type, item.serial_raw, item.serial_key]
        parts += [item.lot]
        for marking in item.markings:
            parts += [marking.get("text"), marking.get("transliteration")]
    return search.search_document(*parts)
