"""a hit's version per side

Revision ID: 6a2f9d4c1e07
Revises: 3e7d51c0a9b2
Create Date: 2026-12-02 14:20:00.000000

One shared counter told each side of a hit when the other side decided, or when the tier
it is not shown went up; each side now has its own. Both start at the shared value, so an
ETag a client holds stays valid.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6a2f9d4c1e07"
down_revision: str | None = "3e7d51c0a9b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# ALTER TABLE … ADD/DROP COLUMN in place, never a batch copy (see revision 863d6e7b4a28).


def upgrade() -> None:
    for column in ("version_a", "version_b"):
        op.add_column("hit", sa.Column(column, sa.Integer(), nullable=False, server_default="1"))
    op.execute("UPDATE hit SET version_a = version, version_b = version")
    op.drop_column("hit", "version")


def downgrade() -> None:
    op.add_column("hit", sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.execute(
        "UPDATE hit SET version = CASE WHEN version_a > version_b THEN version_a "
        "ELSE version_b END"
    )
    op.drop_column("hit", "version_b")
    op.drop_column("hit", "version_a")
