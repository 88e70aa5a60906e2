"""A page of alerts read without ORM objects: its rows, then their children in one query.

The list reads the alert columns an answer shows (`PAGE_COLUMNS`) as Core rows, and the
items, named recipient agencies and named recipient groups of the page in one UNION ALL
(a discriminator column tells them apart), only for the alerts whose content or
recipient lists the principal is shown (app/sharing/visibility.py decides).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.alerts import children
from app.alerts.models import Alert, AlertItem
from app.audit import chain as audit_chain
from app.audit import service as audit
from app.authz.principal import Principal
from app.core import inserts
from app.core.columns import among
from app.sharing import visibility
from app.sharing.handling import HandledRecord
from app.sharing.models import AlertRecipientAgency, AlertRecipientGroup

# What an answer body shows of an alert (and `sort_at`, the list's cursor).
PAGE_COLUMNS = tuple(
    col(c)
    for c in (
        Alert.id,
        Alert.kind,
        Alert.status,
        Alert.version,
        Alert.originator_agency_id,
        Alert.addressed_to_agency_id,
        Alert.created_at,
        Alert.updated_at,
        Alert.published_at,
        Alert.withdrawn_at,
        Alert.withdrawal_reason,
        Alert.title,
        Alert.summary,
        Alert.country,
        Alert.occurred_at,
        Alert.location,
        Alert.tags,
        Alert.details,
        Alert.tlp,
        Alert.audience,
        Alert.embargo_until,
        Alert.handling_codes,
        Alert.reader_keys,
        Alert.sort_at,
    )
)

# The fields of an item's answer body (ItemRead), in order.
ITEM_FIELDS = (
    "category",
    "make",
    "model",
    "calibre",
    "type",
    "country_of_manufacture",
    "year",
    "serial_raw",
    "serial_status",
    "serial_key",
    "markings",
    "lot",
    "quantity",
    "unit",
)

_ITEM, _AGENCY, _GROUP = "i", "a", "g"


@dataclass
class PageChildren:
    """The children of a page's alerts: item bodies, named agencies and groups, by alert."""

    items: dict[uuid.UUID, list[dict[str, Any]]] = field(default_factory=dict)
    agencies: dict[uuid.UUID, list[uuid.UUID]] = field(default_factory=dict)
    groups: dict[uuid.UUID, list[uuid.UUID]] = field(default_factory=dict)


def children_query(
    content_ids: Sequence[uuid.UUID], list_ids: Sequence[uuid.UUID], dialect: str
) -> sa.Select[Any] | sa.CompoundSelect[Any] | None:
    """One query of the items of `content_ids` and the named recipients of `list_ids`.

    Rows of (part, alert_id, id, position, *ITEM_FIELDS): `part` is "i" for an item, "a"
    for a named agency and "g" for a named group, whose id is in `id` (the rest null).
    """
    part = sa.literal_column("'i'", sa.String).label("part")
    selects: list[Any] = []
    if content_ids:
        selects.append(
            sa.select(
                part,
                col(AlertItem.alert_id),
                col(AlertItem.id),
                col(AlertItem.position),
                *(getattr(AlertItem, name) for name in ITEM_FIELDS),
            ).where(among(col(AlertItem.alert_id), content_ids, dialect))
        )
    if list_ids:
        empty = [sa.null() for _ in range(1 + len(ITEM_FIELDS))]
        for code, table, ref in (
            (_AGENCY, AlertRecipientAgency, col(AlertRecipientAgency.agency_id)),
            (_GROUP, AlertRecipientGroup, col(AlertRecipientGroup.group_id)),
        ):
            selects.append(
                sa.select(
                    sa.literal_column(f"'{code}'", sa.String),
                    col(table.alert_id),
                    ref,
                    *empty,
                ).where(among(col(table.alert_id), list_ids, dialect))
            )
    if not selects:
        return None
    if len(selects) == 1:
        return selects[0]
    # The first select types the result's columns (a recipient's id is a UUID as well).
    return sa.union_all(*selects)


async def page_children(
    session: AsyncSession, principal: Principal, alerts: Sequence[HandledRecord]
) -> PageChildren:
    """The items of the alerts whose content the principal is shown, and the named
    recipients of those whose recipient lists it is shown, in one query (none if none)."""
    content_ids = [a.id for a in alerts if visibility.sees_content(a, principal)]
    list_ids = [a.id for a in alerts if visibility.sees_recipient_lists(a, principal)]
    out = _written_here(session, content_ids, list_ids)
    content_ids = [i for i in content_ids if i not in out.items]
    list_ids = [i for i in list_ids if i not in out.agencies]
    dialect = session.get_bind().dialect.name
    query = children_query(content_ids, list_ids, dialect)
    if query is None:
        return out
    if dialect == "postgresql" and (records := audit.take_unwritten(session)):
        # The page's audit record (the read of what it shows) goes with its children.
        query = query.add_cte(inserts.rows_cte(audit_chain.TABLE, records, "audited"))
    conn = await session.connection()
    read: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for row in (await conn.execute(query)).all():
        part, alert_id, ref = row[0], row[1], row[2]
        if part == _ITEM:
            body = dict(zip(ITEM_FIELDS, row[4:], strict=True))
            body["id"] = ref
            body["position"] = row[3]
            read.setdefault(alert_id, []).append(body)
        elif part == _AGENCY:
            out.agencies.setdefault(alert_id, []).append(ref)
        else:
            out.groups.setdefault(alert_id, []).append(ref)
    for alert_id, items in read.items():
        items.sort(key=_position)
        for item in items:
            del item["position"]
        out.items[alert_id] = items
    return out


def _written_here(
    session: AsyncSession, content_ids: Sequence[uuid.UUID], list_ids: Sequence[uuid.UUID]
) -> PageChildren:
    """The children this transaction wrote itself (the answer to a write): not read again."""
    out = PageChildren()
    for alert_id in content_ids:
        items = children.written_items(session, alert_id)
        if items is not None:
            out.items[alert_id] = [
                {name: getattr(i, name) for name in ITEM_FIELDS} | {"id": i.id} for i in items
            ]
    for alert_id in list_ids:
        recipients = children.written_recipients(session, alert_id)
        if recipients is not None:
            out.agencies[alert_id], out.groups[alert_id] = list(recipients[0]), list(recipients[1])
    return out


def _position(item: dict[str, Any]) -> int:
    return int(item["position"])
