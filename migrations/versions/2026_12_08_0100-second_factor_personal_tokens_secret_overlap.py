"""second factor (TOTP, recovery codes, agency MFA rule), personal access tokens, client
secret rotation with an overlap

Revision ID: 5d0c7b3e9f14
Revises: 9c41e7a2b5d8
Create Date: 2026-12-08 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.types

revision: str = "5d0c7b3e9f14"
down_revision: str | None = "9c41e7a2b5d8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite has it): a batch copy would rebuild referenced tables.
    op.add_column(
        "agency", sa.Column("require_mfa", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column(
        "user_account",
        sa.Column("totp_secret", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    )
    op.add_column(
        "user_account", sa.Column("totp_confirmed_at", app.core.types.UTCDateTime(), nullable=True)
    )
    op.add_column("user_account", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    op.add_column(
        "api_client",
        sa.Column(
            "previous_secret_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
        ),
    )
    op.add_column(
        "api_client",
        sa.Column("previous_secret_expires_at", app.core.types.UTCDateTime(), nullable=True),
    )
    op.create_table(
        "mfa_recovery_code",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", app.core.types.UTCDateTime(), nullable=False),
        sa.Column("used_at", app.core.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code_hash"),
    )
    op.create_index("ix_mfa_recovery_code_user_id", "mfa_recovery_code", ["user_id"])
    op.create_table(
        "personal_access_token",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("token_hint", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("scopes", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("token_epoch", sa.Integer(), nullable=False),
        sa.Column("created_at", app.core.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", app.core.types.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", app.core.types.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", app.core.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_personal_access_token_user_id", "personal_access_token", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_personal_access_token_user_id", table_name="personal_access_token")
    op.drop_table("personal_access_token")
    op.drop_index("ix_mfa_recovery_code_user_id", table_name="mfa_recovery_code")
    op.drop_table("mfa_recovery_code")
    # Plain DROP COLUMN (SQLite 3.35+ has it): a batch copy of a referenced table fails.
    for table, column in (
        ("api_client", "previous_secret_expires_at"),
        ("api_client", "previous_secret_hash"),
        ("user_account", "totp_last_step"),
        ("user_account", "totp_confirmed_at"),
        ("user_account", "totp_secret"),
        ("agency", "require_mfa"),
    ):
        op.drop_column(table, column)
