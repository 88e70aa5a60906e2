"""The visibility rule's SQL form bound to the alert table: where every alert query starts.

app/sharing/visibility.py states the rule over any table with the handling columns and
never names this package's tables; these are its one-line bindings to `alert`, used by
every caller (alerts, traces, hits, webhooks, interop, console).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import select
from sqlmodel.sql.expression import SelectOfScalar

from app.alerts.models import Alert
from app.authz.principal import Principal
from app.sharing import visibility


def visible_filter(
    agency_id: uuid.UUID, now: datetime | None = None, *, dialect: str
) -> ColumnElement[bool]:
    """A WHERE clause over `alert`: the alerts agency `agency_id` may see."""
    return visibility.visible_filter(Alert, agency_id, now, dialect=dialect)


def content_filter(
    agency_id: uuid.UUID, *, principal: Principal | None = None
) -> ColumnElement[bool]:
    """A WHERE clause over `alert`: the visible alerts whose content may be matched."""
    return visibility.content_filter(Alert, agency_id, principal=principal)


def visible_alerts(
    principal: Principal, *, dialect: str, now: datetime | None = None
) -> SelectOfScalar[Alert]:
    """`SELECT alert … WHERE <visible to the principal's agency>`: every alert query's start."""
    return select(Alert).where(visible_filter(principal.agency_id, now, dialect=dialect))


def visible_alert_rows(
    principal: Principal, *columns: ColumnElement[Any], dialect: str, now: datetime | None = None
) -> Select[Any]:
    """`visible_alerts` with more columns: rows of (alert, *columns)."""
    return sa.select(Alert, *columns).where(
        visible_filter(principal.agency_id, now, dialect=dialect)
    )
