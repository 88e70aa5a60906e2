"""versions for hits, subscriptions and policies; trace-request forwards

Revision ID: 863d6e7b4a28
Revises: 5e1b7c9a2d40
Create Date: 2026-12-01 22:38:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '863d6e7b4a28'
down_revision: str | None = '5e1b7c9a2d40'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VERSIONED = ('hit', 'webhook_subscription', 'sharing_policy')
LINKS = ('forwarded_to_alert_id', 'forwarded_from_alert_id')

# Every change is ALTER TABLE … ADD/DROP COLUMN in place, never a batch copy: on SQLite a
# copy drops the old table, and with it the rows that reference it ON DELETE CASCADE
# (a subscription's deliveries, a trace request's response, messages and history).


def upgrade() -> None:
    for table in VERSIONED:
        # Rows that exist already are at their first version (the default stays: SQLite
        # cannot drop a column default in place, and new rows always set it).
        op.add_column(
            table, sa.Column('version', sa.Integer(), nullable=False, server_default='1')
        )
    for column in LINKS:
        op.add_column('trace_request', sa.Column(column, sa.Uuid(), nullable=True))


def downgrade() -> None:
    for column in reversed(LINKS):
        op.drop_column('trace_request', column)
    for table in reversed(VERSIONED):
        op.drop_column(table, 'version')
