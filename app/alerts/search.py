"""Text search over alerts: PostgreSQL full-text (GIN index) or SQLite FTS5."""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnClause, ColumnElement
from sqlmodel.ext.asyncio.session import AsyncSession

from app.alerts.models import Alert

# 'simple': no stemming, no stop words; alerts come in many languages.
TS_CONFIG = "simple"
FTS_TABLE = "alert_fts"
_TOKEN = re.compile(r"\w+", re.UNICODE)


def search_document(*parts: str | None) -> str:
    """The text a search looks at, from the alert's and its items' fields."""
    return "\n".join(p for p in parts if p)


async def index_alerts(session: AsyncSession, alerts: Sequence[Alert], *, new: bool) -> None:
    """Keep the SQLite FTS5 table in step (PostgreSQL indexes the column itself): the
    alerts' texts in one executemany, after their old ones (none when `new`)."""
    if session.get_bind().dialect.name != "sqlite" or not alerts:
        return
    # Plain SQL on the session's connection: sqlmodel's `exec` is typed for statements only.
    conn = await session.connection()
    if not new:
        await conn.execute(
            sa.text(f"DELETE FROM {FTS_TABLE} WHERE alert_id = :id"),  # noqa: S608
            [{"id": alert.id.hex} for alert in alerts],
        )
    await conn.execute(
        sa.text(f"INSERT INTO {FTS_TABLE} (alert_id, body) VALUES (:id, :body)"),  # noqa: S608
        [{"id": alert.id.hex, "body": alert.search_text} for alert in alerts],
    )


def matches(dialect: str, query: str) -> ColumnElement[bool]:
    """A WHERE clause: the alert's text contains every word of `query`."""
    if dialect == "postgresql":
        # The configuration is spelled exactly as in the index expression, so the GIN index
        # ix_alert_search_text (to_tsvector('simple', search_text)) serves the match.
        config: ColumnClause[str] = sa.literal_column(f"'{TS_CONFIG}'")
        vector = sa.func.to_tsvector(config, Alert.search_text)
        return vector.op("@@")(sa.func.plainto_tsquery(config, query))
    words = _TOKEN.findall(query)
    if not words:
        return sa.false()
    # Each word quoted, so FTS5 operators in user input are plain text.
    fts_query = " ".join('"' + w.replace('"', '""') + '"' for w in words)
    alert_id: ColumnClause[str] = sa.literal_column("alert_id")
    ids = (
        sa.select(alert_id)
        .select_from(sa.table(FTS_TABLE))
        .where(sa.literal_column(FTS_TABLE).op("MATCH")(fts_query))
    )
    # SQLite keeps UUIDs as 32 hex digits, which is how index_alerts writes them.
    return sa.literal_column("alert.id").in_(ids)
