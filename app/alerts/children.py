"""Alert child rows: items, tags and recipients, loaded and written (built by rows.py)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.alerts import rows, search
from app.alerts.models import Alert, AlertItem, AlertTag
from app.alerts.rows import StoredItem
from app.alerts.schemas import ItemIn
from app.audit import chain as audit_chain
from app.core import inserts
from app.core.columns import table_of, values_of
from app.sharing import visibility
from app.sharing.handling import Handling
from app.sharing.models import AlertRecipientAgency, AlertRecipientGroup

_ITEMS: sa.Table = table_of(AlertItem)
_TAGS: sa.Table = table_of(AlertTag)
_ALERTS: sa.Table = table_of(Alert)
_RECIPIENT_AGENCIES: sa.Table = table_of(AlertRecipientAgency)
_RECIPIENT_GROUPS: sa.Table = table_of(AlertRecipientGroup)


# --- what this transaction wrote -------------------------------------------------------
# The items and recipient rows `write_new` and `replace_children` wrote, by alert, until
# the transaction ends: they are all of the alert's rows of that kind (old ones went), so
# the answer body, the webhook fan-out and the matching of the same change read them
# here instead of selecting them again. Forgotten when the transaction commits and at
# every rollback (a savepoint's too).

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
def _forget_committed(session: Session) -> None:
    # A SAVEPOINT released (a batch's alerts) keeps its rows in the transaction: not yet.
    if not session.in_nested_transaction():
        session.info.pop(_WRITTEN, None)


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


async def write_new(
    session: AsyncSession,
    news: Sequence[rows.NewAlert],
    *,
    audit_rows: Sequence[Mapping[str, Any]] = (),
) -> None:
    """New alerts and every child row they come with: one statement on PostgreSQL, for one
    alert or a batch of them (app/core/inserts.py), and no UPDATE after; `audit_rows`
    (`audit.take_unwritten`) go in the same statement. Each alert object then joins the
    session as the stored row it is."""
    await inserts.insert_all(
        session,
        [
            (_ALERTS, [values_of(n.alert, _ALERTS) for n in news]),
            (_ITEMS, [rows.item_fields(r) for n in news for r in n.items]),
            (_TAGS, [{"alert_id": n.alert.id, "tag": t} for n in news for t in n.tags]),
            (
                _RECIPIENT_AGENCIES,
                [{"alert_id": n.alert.id, "agency_id": a} for n in news for a in n.agencies],
            ),
            (
                _RECIPIENT_GROUPS,
                [{"alert_id": n.alert.id, "group_id": g} for n in news for g in n.groups],
            ),
            (audit_chain.TABLE, audit_rows),
        ],
    )
    written = _written(session)
    for new in news:
        make_transient_to_detached(new.alert)
        session.add(new.alert)
        written.items[new.alert.id] = list(new.items)
        written.recipients[new.alert.id] = (new.agencies, new.groups)
    await search.index_alerts(session, [new.alert for new in news], new=True)


async def replace_children(
    session: AsyncSession,
    alert: Alert,
    *,
    items: Sequence[ItemIn] | None,
    tags: list[str] | None,
    handling: Handling | None,
) -> None:
    """A changed alert's items, tags and recipients, each only when given, in place of the
    old rows; its reader keys and search text follow. The alert row is updated first."""
    new_items: list[rows.ItemRow] | None = None
    if items is not None:
        await session.exec(delete(AlertItem).where(col(AlertItem.alert_id) == alert.id))
        new_items = [rows.item_row(alert.id, p, i) for p, i in enumerate(items)]
    if tags is not None:
        await session.exec(delete(AlertTag).where(col(AlertTag.alert_id) == alert.id))
    agencies: list[uuid.UUID] = []
    groups: list[uuid.UUID] = []
    if handling is not None:
        for table in (AlertRecipientAgency, AlertRecipientGroup):
            await session.exec(delete(table).where(col(table.alert_id) == alert.id))
        agencies, groups = rows.recipients_of(handling)
        alert.reader_keys = visibility.reader_keys(agencies, groups) if agencies or groups else []
    stored: list[rows.StoredItem]
    if new_items is None:
        await session.flush()
        stored = (await items_by_alert(session, [alert.id])).get(alert.id, [])
    else:
        stored = list(new_items)
    alert.search_text = rows.search_text(alert, stored)
    session.add(alert)
    await session.flush()
    await inserts.insert_all(
        session,
        [
            (_ITEMS, [rows.item_fields(r) for r in new_items or []]),
            (_TAGS, [{"alert_id": alert.id, "tag": t} for t in tags or []]),
            (_RECIPIENT_AGENCIES, [{"alert_id": alert.id, "agency_id": a} for a in agencies]),
            (_RECIPIENT_GROUPS, [{"alert_id": alert.id, "group_id": g} for g in groups]),
        ],
    )
    written = _written(session)
    if new_items is not None:
        written.items[alert.id] = stored
    if handling is not None:
        written.recipients[alert.id] = (agencies, groups)
    await search.index_alerts(session, [alert], new=False)
