"""operator agency, token epochs, set-password tokens

Revision ID: 3b8e61f0c2a7
Revises: 863d6e7b4a28
Create Date: 2026-12-01 22:29:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
import app.core.types

revision: str = '3b8e61f0c2a7'
down_revision: str | None = '863d6e7b4a28'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EPOCH_TABLES = ('user_account', 'api_client', 'auth_session', 'console_session')


def upgrade() -> None:
    # Plain ALTER TABLE … ADD COLUMN (SQLite has it): a batch copy would drop and rebuild
    # `agency`, which its referencing rows forbid once there is data.
    op.add_column(
        'agency', sa.Column('is_operator', sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    for table in EPOCH_TABLES:
        op.add_column(
            table, sa.Column('token_epoch', sa.Integer(), server_default='0', nullable=False)
        )
    op.create_table('set_password_token',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', app.core.types.UTCDateTime(), nullable=False),
    sa.Column('expires_at', app.core.types.UTCDateTime(), nullable=False),
    sa.Column('used_at', app.core.types.UTCDateTime(), nullable=True),
    sa.Column('revoked_at', app.core.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('set_password_token', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_set_password_token_user_id'), ['user_id'], unique=False
        )
    # The agencies of the operator's staff are the operator's: they leave every sharing
    # group, and groups they own are retired (an owner is always a member).
    op.execute(
        "UPDATE agency SET is_operator = true WHERE id IN (SELECT agency_id FROM user_account"
        " WHERE role = 'platform_admin' AND deleted_at IS NULL)"
    )
    op.execute(
        "DELETE FROM sharing_group_member WHERE agency_id IN"
        " (SELECT id FROM agency WHERE is_operator = true)"
    )
    op.execute(
        "UPDATE sharing_group SET deleted_at = CURRENT_TIMESTAMP WHERE deleted_at IS NULL"
        " AND owner_agency_id IN (SELECT id FROM agency WHERE is_operator = true)"
    )


def downgrade() -> None:
    with op.batch_alter_table('set_password_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_set_password_token_user_id'))
    op.drop_table('set_password_token')
    # ALTER TABLE … DROP COLUMN (SQLite 3.35 or newer), for the same reason.
    for table in EPOCH_TABLES:
        op.drop_column(table, 'token_epoch')
    op.drop_column('agency', 'is_operator')
