"""passkeys (WebAuthn credentials) and agencies' OpenID Connect providers

Revision ID: 7a4e2c9d1b63
Revises: 5d0c7b3e9f14
Create Date: 2026-12-08 01:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.types

revision: str = "7a4e2c9d1b63"
down_revision: str | None = "5d0c7b3e9f14"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Text = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "webauthn_credential",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("credential_id", Text(length=1400), nullable=False),
        sa.Column("public_key", Text(length=2000), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("transports", Text(length=200), nullable=False),
        sa.Column("name", Text(length=100), nullable=False),
        sa.Column("created_at", app.core.types.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", app.core.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("credential_id"),
    )
    op.create_index("ix_webauthn_credential_user_id", "webauthn_credential", ["user_id"])
    op.create_table(
        "identity_provider",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("issuer", Text(length=500), nullable=False),
        sa.Column("client_id", Text(length=200), nullable=False),
        sa.Column("client_secret", Text(length=500), nullable=False),
        sa.Column("email_claim", Text(length=100), nullable=False),
        sa.Column("email_domains", Text(length=1000), nullable=False),
        sa.Column("create_users", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", app.core.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", app.core.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agency_id"),
    )
    op.add_column("user_account", sa.Column("oidc_issuer", Text(length=500), nullable=True))
    op.add_column("user_account", sa.Column("oidc_subject", Text(length=255), nullable=True))
    op.create_index(
        "uq_user_account_oidc", "user_account", ["oidc_issuer", "oidc_subject"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_user_account_oidc", table_name="user_account")
    op.drop_column("user_account", "oidc_subject")
    op.drop_column("user_account", "oidc_issuer")
    op.drop_table("identity_provider")
    op.drop_index("ix_webauthn_credential_user_id", table_name="webauthn_credential")
    op.drop_table("webauthn_credential")
