"""webhooks rendered at send time: subscription manager and URL epoch, delivery order

Revision ID: 5e1b7c9a2d40
Revises: 5b7e0c1d9a31
Create Date: 2026-12-01 21:29:00.000000

Subscriptions record who manages them (content only while that principal may read
alerts), taken for existing rows from the audit trail's last create / update /
rotate-secret record; a subscription no record names delivers references. Deliveries
record the alert version they were written at (their order) and the URL epoch of their
subscription. Stored answer excerpts are cleared: they were kept up to 2 KB from any
address, allow-listed internal services included, and the log now keeps at most 256
bytes and nothing from a non-public address.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.types

revision: str = '5e1b7c9a2d40'
down_revision: str | None = '5b7e0c1d9a31'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MANAGING = ("subscription.create", "subscription.update", "subscription.rotate_secret")


def upgrade() -> None:
    with op.batch_alter_table('webhook_subscription', schema=None) as batch_op:
        batch_op.add_column(sa.Column('managed_by_kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True))
        batch_op.add_column(sa.Column('managed_by_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('url_epoch', sa.Integer(), server_default='1', nullable=False))

    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alert_version', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('url_epoch', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('replayed_at', app.core.types.UTCDateTime(), nullable=True))
        batch_op.create_index('ix_webhook_delivery_stream', ['alert_id', 'subscription_id'], unique=False)

    bind = op.get_bind()
    _backfill_managers(bind)
    if bind.dialect.name == "postgresql":
        op.execute(
            "UPDATE webhook_delivery SET alert_version = (payload->'data'->>'version')::int "
            "WHERE alert_id IS NOT NULL AND payload->'data'->>'version' ~ '^[0-9]{1,9}$'"
        )
    else:
        op.execute(
            "UPDATE webhook_delivery SET alert_version = "
            "CAST(json_extract(payload, '$.data.version') AS INTEGER) "
            "WHERE alert_id IS NOT NULL "
            "AND json_type(payload, '$.data.version') = 'integer'"
        )
    op.execute("UPDATE webhook_delivery SET last_response = NULL")
    op.execute("UPDATE webhook_attempt SET response_excerpt = NULL")


def _backfill_managers(bind: sa.Connection) -> None:
    audit = sa.table(
        "audit_record",
        sa.column("seq", sa.BigInteger()),
        sa.column("action", sa.String()),
        sa.column("object_id", sa.String()),
        sa.column("actor_kind", sa.String()),
        sa.column("actor_id", sa.Uuid()),
    )
    subs = sa.table(
        "webhook_subscription",
        sa.column("id", sa.Uuid()),
        sa.column("managed_by_kind", sa.String()),
        sa.column("managed_by_id", sa.Uuid()),
    )
    rows = bind.execute(
        sa.select(audit.c.object_id, audit.c.actor_kind, audit.c.actor_id)
        .where(audit.c.action.in_(MANAGING))
        .order_by(audit.c.seq)
    ).all()
    last: dict[str, tuple[str, object]] = {}
    for object_id, kind, actor in rows:
        if kind in ("user", "client") and actor is not None and object_id:
            last[object_id] = (kind, actor)
    for sub_id in bind.execute(sa.select(subs.c.id)).scalars().all():
        found = last.get(str(sub_id))
        if found is not None:
            bind.execute(
                subs.update()
                .where(subs.c.id == sub_id)
                .values(managed_by_kind=found[0], managed_by_id=found[1])
            )


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN (SQLite 3.35+), not a batch copy: copying a table drops
    # the old one, and its ON DELETE CASCADE rows (deliveries, attempts) with it.
    op.drop_index('ix_webhook_delivery_stream', table_name='webhook_delivery')
    for column in ('replayed_at', 'url_epoch', 'alert_version'):
        op.drop_column('webhook_delivery', column)
    for column in ('url_epoch', 'managed_by_id', 'managed_by_kind'):
        op.drop_column('webhook_subscription', column)
