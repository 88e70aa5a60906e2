"""the alert page tables are scanned serially

Revision ID: 9c41e7a2b5d8
Revises: 6a2f9d4c1e07
Create Date: 2026-12-03 08:00:00.000000

Every query of these tables returns a page (a LIMIT of at most a few hundred rows, found
through an index). At a million alerts the planner sometimes chose a two-worker Gather
Merge for the tag filter, which costs more to start than the page costs to read (31-52 ms
against 10-14 ms serially). `parallel_workers = 0` keeps their plans serial; PostgreSQL
only (SQLite has no parallel plans).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "9c41e7a2b5d8"
down_revision: str | None = "6a2f9d4c1e07"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("alert", "alert_tag", "alert_item")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (parallel_workers = 0)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (parallel_workers)")
