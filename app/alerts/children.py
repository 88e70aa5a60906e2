"""Alert child rows: items, tags and recipients, loaded and written, and the search text."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.alerts import search, statements
from app.alerts.models import Alert, AlertItem, AlertTag
from app.alerts.schemas import ItemIn
from app.alerts.serials import make_key, serial_key
from app.core.columns import table_of, values_of
from app.core.errors import InvalidInput
from app.core.types import new_id
from app.sharing import visibility
from app.sharing.handling import Audience, Handling
from app.sharing.models import AlertRecipientAgency, AlertRecipientGroup


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
_ITEM_FIELDS = tuple(ItemRow.__dataclass_fields__)  # rows as dicts: shallow, not asdict()
_ITEMS: sa.Table = table_of(AlertItem)
_TAGS: sa.Table = table_of(AlertTag)
_ALERTS: sa.Table = table_of(Alert)
_RECIPIENT_AGENCIES: sa.Table = table_of(AlertRecipientAgency)
_RECIPIENT_GROUPS: sa.Table = table_of(AlertRecipientGroup)


def copied_items(alert_id: uuid.UUID, items: list[StoredItem]) -> list[ItemRow]:
    """Another alert's items as new rows of `alert_id` (a forwarded copy)."""
    return [
        ItemRow(id=new_id(), alert_id=alert_id, **{c: getattr(i, c) for c in ITEM_COLUMNS})
        for i in items
    ]


# --- what this transaction wrote -------------------------------------------------------
# The items and recipient rows `write_children` wrote, by alert, until the transaction
# ends: they are all of the alert's rows of that kind (old ones were deleted first), so
# the answer body, the webhook fan-out and the matching of the same change read them
# here instead of selecting them again. Forgotten at every commit and rollback.

_WRITTEN = "tracewire.alert_children_written"


@dataclass
class _Written:
    items: dict[uuid.UUID, list[StoredItem]] = field(default_factory=dict)
    recipients: dict[uuid.UUID, tuple[list[uuid.UUID], list[uuid.UUID]]] = field(
        default_factory=dict
    )


def _written(session: AsyncSession) -> _Written:
    info = session.sync_session.info
    written = info.get(_WRITTEN)
    if written is None:
        written = info[_WRITTEN] = _Written()
    assert isinstance(written, _Written)
    return written


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, *_args: object) -> None:
    session.info.pop(_WRITTEN, None)


def written_items(session: AsyncSession, alert_id: uuid.UUID) -> list[StoredItem] | None:
    """The items this transaction wrote for the alert (all of them, in order), or None when
    it wrote none."""
    return _written(session).items.get(alert_id)


def written_recipients(
    session: AsyncSession, alert_id: uuid.UUID
) -> tuple[list[uuid.UUID], list[uuid.UUID]] | None:
    """The recipient agencies and groups this transaction wrote for the alert (all of its
    recipient rows), or None when it wrote none."""
    return _written(session).recipients.get(alert_id)


async def items_by_alert(
    session: AsyncSession, alert_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[StoredItem]]:
    """The items of each alert, in order, in one query (none for items just written)."""
    written = _written(session).items
    out: dict[uuid.UUID, list[StoredItem]] = {i: written[i] for i in alert_ids if i in written}
    wanted = [i for i in alert_ids if i not in written]
    if not wanted:
        return out
    rows = await session.exec(
        select(AlertItem)
        .where(col(AlertItem.alert_id).in_(wanted))
        .order_by(col(AlertItem.alert_id), col(AlertItem.position))
    )
    for item in rows.all():
        out.setdefault(item.alert_id, []).append(item)
    return out


async def recipients_by_alert(
    session: AsyncSession, alert_ids: list[uuid.UUID]
) -> tuple[dict[uuid.UUID, list[uuid.UUID]], dict[uuid.UUID, list[uuid.UUID]]]:
    """The named recipient agencies and groups of each alert, one query each (none for
    recipients just written)."""
    agencies: dict[uuid.UUID, list[uuid.UUID]] = {}
    groups: dict[uuid.UUID, list[uuid.UUID]] = {}
    written = _written(session).recipients
    for alert_id in alert_ids:
        if alert_id in written:
            named, grouped = written[alert_id]
            if named:
                agencies[alert_id] = list(named)
            if grouped:
                groups[alert_id] = list(grouped)
    alert_ids = [i for i in alert_ids if i not in written]
    if not alert_ids:
        return agencies, groups
    for row in (
        await session.exec(
            select(AlertRecipientAgency).where(col(AlertRecipientAgency.alert_id).in_(alert_ids))
        )
    ).all():
        agencies.setdefault(row.alert_id, []).append(row.agency_id)
    for group_row in (
        await session.exec(
            select(AlertRecipientGroup).where(col(AlertRecipientGroup.alert_id).in_(alert_ids))
        )
    ).all():
        groups.setdefault(group_row.alert_id, []).append(group_row.group_id)
    return agencies, groups


async def current_handling(session: AsyncSession, alert: Alert) -> Handling:
    """The alert's handling as stored: its columns and its recipient rows."""
    agencies, groups = await recipients_by_alert(session, [alert.id])
    return Handling(
        tlp=alert.tlp,
        audience=alert.audience,
        recipient_agencies=agencies.get(alert.id, []),
        recipient_groups=groups.get(alert.id, []),
        embargo_until=alert.embargo_until,
        handling_codes=alert.handling_codes,
    )


async def write_children(
    session: AsyncSession,
    alert: Alert,
    *,
    items: Sequence[ItemIn | ItemRow] | None,
    tags: list[str] | None,
    handling: Handling | None,
    replace: bool = False,
) -> None:
    """Items (given, or rows copied from another alert), tags and recipients (each only
    when given), and the search text. The alert row is written once, with its reader keys
    and search text, before its children (no ORM relationship orders them), so a new alert
    costs one INSERT per child table and no UPDATE; items and tags are multi-row Core."""
    item_rows: list[ItemRow] | None = None
    if items is not None:
        if replace:
            await session.exec(delete(AlertItem).where(col(AlertItem.alert_id) == alert.id))
        item_rows = [
            i if isinstance(i, ItemRow) else _item_row(alert.id, position, i)
            for position, i in enumerate(items)
        ]
    if tags is not None and replace:
        await session.exec(delete(AlertTag).where(col(AlertTag.alert_id) == alert.id))
    if handling is not None:
        await _set_reader_keys(session, alert, handling, replace=replace)
    stored: list[StoredItem]
    if item_rows is None:
        await session.flush()
        stored = (await items_by_alert(session, [alert.id])).get(alert.id, [])
    else:
        stored = list(item_rows)
    alert.search_text = _search_text(alert, stored)
    written = _written(session)
    recipients = _recipients(handling) if handling is not None else ([], [])
    if session.get_bind().dialect.name == "postgresql" and sa.inspect(alert).transient:
        await _insert_new(session, alert, item_rows or [], tags or [], *recipients)
    else:
        await _insert_each(session, alert, item_rows or [], tags or [], *recipients)
    if item_rows is not None:
        written.items[alert.id] = stored
    if handling is not None:
        written.recipients[alert.id] = recipients
    await search.index_alert(session, alert)


async def _insert_new(
    session: AsyncSession,
    alert: Alert,
    items: list[ItemRow],
    tags: list[str],
    agencies: list[uuid.UUID],
    groups: list[uuid.UUID],
) -> None:
    """A new alert and all its child rows in one statement (PostgreSQL, app/alerts/
    statements.py). The alert object then joins the session as the stored row it is."""
    parts: list[tuple[sa.Table, list[dict[str, Any]]]] = [
        (_ALERTS, [values_of(alert, _ALERTS)]),
        (_ITEMS, [{f: getattr(r, f) for f in _ITEM_FIELDS} for r in items]),
        (_TAGS, [{"alert_id": alert.id, "tag": t} for t in tags]),
        (_RECIPIENT_AGENCIES, [{"alert_id": alert.id, "agency_id": a} for a in agencies]),
        (_RECIPIENT_GROUPS, [{"alert_id": alert.id, "group_id": g} for g in groups]),
    ]
    statement, params = statements.insert_all(parts)
    await (await session.connection()).execute(statement, params)
    make_transient_to_detached(alert)
    session.add(alert)


async def _insert_each(
    session: AsyncSession,
    alert: Alert,
    items: list[ItemRow],
    tags: list[str],
    agencies: list[uuid.UUID],
    groups: list[uuid.UUID],
) -> None:
    """The alert row (its ORM flush), then one multi-row INSERT per child table."""
    session.add(alert)
    await session.flush()
    if items:
        rows = [{f: getattr(r, f) for f in _ITEM_FIELDS} for r in items]
        await session.exec(sa.insert(_ITEMS), params=rows)
    if tags:
        await session.exec(
            sa.insert(_TAGS), params=[{"alert_id": alert.id, "tag": t} for t in tags]
        )
    await _insert_recipients(session, alert, agencies, groups)


async def _set_reader_keys(
    session: AsyncSession, alert: Alert, handling: Handling, *, replace: bool
) -> None:
    """The alert's reader keys from its handling (old recipient rows go when replacing)."""
    if replace:
        await session.exec(
            delete(AlertRecipientAgency).where(col(AlertRecipientAgency.alert_id) == alert.id)
        )
        await session.exec(
            delete(AlertRecipientGroup).where(col(AlertRecipientGroup.alert_id) == alert.id)
        )
    alert.reader_keys = []
    if handling.audience is not Audience.recipients:
        return
    alert.reader_keys = visibility.reader_keys(
        handling.recipient_agencies, handling.recipient_groups
    )


def _recipients(handling: Handling) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """The recipient agencies and groups to store for `handling` (none unless named)."""
    if handling.audience is not Audience.recipients:
        return [], []
    return list(dict.fromkeys(handling.recipient_agencies)), list(
        dict.fromkeys(handling.recipient_groups)
    )


async def _insert_recipients(
    session: AsyncSession, alert: Alert, agencies: list[uuid.UUID], groups: list[uuid.UUID]
) -> None:
    """The recipient rows, once the alert row is written."""
    # Plain multi-row INSERTs: an alert may name hundreds of recipients.
    for table, column, ids in (
        (_RECIPIENT_AGENCIES, "agency_id", agencies),
        (_RECIPIENT_GROUPS, "group_id", groups),
    ):
        if ids:
            await session.exec(
                sa.insert(table), params=[{"alert_id": alert.id, column: i} for i in ids]
            )


# The match keys' columns (alert_item.make_key, .serial_key). A key is the text's NFKC form,
# which a few characters make many times longer (U+FDFA is 18 characters).
KEY_MAX = 255


def _fits(key: str | None, field: str) -> str | None:
    if key is not None and len(key) > KEY_MAX:
        raise InvalidInput.on(field, f"too long to match once normalised (over {KEY_MAX})")
    return key


def _item_row(alert_id: uuid.UUID, position: int, item: ItemIn) -> ItemRow:
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


def _search_text(alert: Alert, items: list[StoredItem]) -> str:
    parts: list[str | None] = [alert.title, alert.summary, " ".join(alert.tags)]
    if alert.location:
        parts.append(str(alert.location.get("text") or ""))
    for item in items:
        parts += [item.make, item.model, item.calibre, item.type, item.serial_raw, item.serial_key]
        parts += [item.lot]
        for marking in item.markings:
            parts += [marking.get("text"), marking.get("transliteration")]
    return search.search_document(*parts)
