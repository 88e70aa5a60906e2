"""Alert queries: one visible alert, the filtered list page and activity, through app/sharing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from app.alerts import page, search, visible
from app.alerts.models import Alert, AlertItem, AlertTag
from app.alerts.schemas import SerialStatus
from app.alerts.serials import serial_key
from app.audit import service as audit
from app.authz import rules
from app.authz.principal import Principal
from app.core import concurrency
from app.core.errors import InvalidInput, NotFound
from app.core.pagination import Keyset
from app.sharing.handling import AlertKind, AlertStatus, Tlp


async def get_visible_alert(
    session: AsyncSession, principal: Principal, alert_id: uuid.UUID, *, for_change: bool = False
) -> Alert:
    """The alert if the principal's agency may see it; 404 otherwise (never 403).

    `for_change` locks it (app/core/concurrency.py): every change of an alert loads it so,
    and checks its version and status only then.
    """
    rules.require_alert_reader(principal)
    dialect = session.get_bind().dialect.name
    query = visible.visible_alerts(principal, dialect=dialect).where(Alert.id == alert_id)
    if for_change:
        query = concurrency.for_change(query, Alert)
    alert = (await session.exec(query)).first()
    if alert is None:
        raise NotFound("No such alert.")
    return alert


async def read_alert(session: AsyncSession, principal: Principal, alert_id: uuid.UUID) -> Alert:
    """GET of one alert: a visible alert, its read recorded in the audit trail."""
    alert = await get_visible_alert(session, principal, alert_id)
    await record_read(session, principal, alert)
    return alert


async def record_read(session: AsyncSession, principal: Principal, alert: Alert) -> None:
    """A visible alert read on its own (`GET /alerts/{id}`): into the audit trail."""
    await audit.record_reads(session, principal, [alert.id], "alert.read")


@dataclass(frozen=True)
class AlertFilters:
    """The list's query parameters; None leaves a filter off."""

    kind: AlertKind | None = None
    status: AlertStatus | None = None
    country: str | None = None
    tlp: Tlp | None = None
    originator: uuid.UUID | None = None
    tag: str | None = None
    serial: str | None = None
    q: str | None = None
    occurred_since: datetime | None = None
    occurred_until: datetime | None = None
    updated_since: datetime | None = None


# The list's order, newest first (the ix_alert_*sort indexes serve it).
ALERT_ORDER = Keyset((Alert.sort_at, Alert.id), newest_first=True)


def list_query(
    dialect: str,
    principal: Principal,
    filters: AlertFilters,
    *,
    limit: int,
    cursor: str | None = None,
) -> SelectOfScalar[Alert]:
    """The list query (one page plus one row), built on the sharing rule's filter."""
    query = visible.visible_alerts(principal, dialect=dialect)
    f = filters
    # Identity filters: a tombstone shows kind, status, originator and times.
    if f.kind:
        query = query.where(Alert.kind == f.kind)
    if f.status:
        query = query.where(Alert.status == f.status)
    if f.originator:
        query = query.where(Alert.originator_agency_id == f.originator)
    # Content filters: never matched against a withdrawn alert's hidden content, or
    # trying values would reveal it.
    content = _content_conditions(dialect, f)
    if content:
        query = query.where(
            visible.content_filter(principal.agency_id, principal=principal), *content
        )
    if f.updated_since:
        query = query.where(col(Alert.updated_at) >= f.updated_since)
    return ALERT_ORDER.page_query(query, limit=limit, cursor=cursor)


def _content_conditions(dialect: str, f: AlertFilters) -> list[sa.ColumnElement[bool]]:
    """The filters that look at an alert's content."""
    content: list[sa.ColumnElement[bool]] = []
    if f.country:
        content.append(col(Alert.country) == f.country)
    if f.tlp:
        content.append(col(Alert.tlp) == f.tlp)
    if f.tag:
        content.append(
            sa.exists().where(col(AlertTag.alert_id) == Alert.id, col(AlertTag.tag) == f.tag)
        )
    if f.serial:
        key = serial_key(f.serial, SerialStatus.present)
        if key is None:
            raise InvalidInput.on("serial", "no letters or digits to match", location="query")
        content.append(
            sa.exists().where(col(AlertItem.alert_id) == Alert.id, col(AlertItem.serial_key) == key)
        )
    if f.q:
        content.append(search.matches(dialect, f.q))
    if f.occurred_since:
        content.append(col(Alert.occurred_at) >= f.occurred_since)
    if f.occurred_until:
        content.append(col(Alert.occurred_at) < f.occurred_until)
    return content


async def list_alerts(
    session: AsyncSession,
    principal: Principal,
    filters: AlertFilters,
    *,
    limit: int,
    cursor: str | None = None,
) -> tuple[Sequence[sa.Row[Any]], str | None]:
    """Visible alerts matching the filters, newest first, one keyset page: Core rows of
    the columns an answer shows (`page.PAGE_COLUMNS`), no ORM objects."""
    rules.require_alert_reader(principal)
    query = list_query(
        session.get_bind().dialect.name, principal, filters, limit=limit, cursor=cursor
    ).with_only_columns(*page.PAGE_COLUMNS)
    conn = await session.connection()
    page_rows, next_cursor = ALERT_ORDER.split((await conn.execute(query)).all(), limit)
    # A search result is a read of what it returns.
    await audit.record_reads(session, principal, [a.id for a in page_rows], "alert.list")
    return page_rows, next_cursor


async def activity(
    session: AsyncSession, principal: Principal, since: datetime, *, limit: int = 2000
) -> list[tuple[str, datetime]]:
    """(kind, time) of the visible alerts changed since `since`, newest first, for charts.

    Identity fields only, through the list's own query: nothing of any content is read.
    """
    rules.require_alert_reader(principal)
    dialect = session.get_bind().dialect.name
    query = list_query(
        dialect, principal, AlertFilters(updated_since=since), limit=limit
    ).with_only_columns(col(Alert.kind), col(Alert.sort_at))
    conn = await session.connection()
    return [(kind, at) for kind, at in (await conn.execute(query)).all()]
