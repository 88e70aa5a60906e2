"""hit disclosure and matching at embargo release

Revision ID: 5b7e0c1d9a31
Revises: 7c0a5e1d2b94
Create Date: 2026-12-01 21:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
import app.core.types

revision: str = '5b7e0c1d9a31'
down_revision: str | None = '7c0a5e1d2b94'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('hit_pending_match',
    sa.Column('alert_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', app.core.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alert.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('alert_id')
    )
    with op.batch_alter_table('hit', schema=None) as batch_op:
        batch_op.add_column(sa.Column('disclosed_by_a_at', app.core.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('disclosed_by_b_at', app.core.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('hit', schema=None) as batch_op:
        batch_op.drop_column('disclosed_by_b_at')
        batch_op.drop_column('disclosed_by_a_at')
    op.drop_table('hit_pending_match')
