"""audit chain linked after commit; heads keep a key id, not a key

Audit records get an insertion id (the primary key) and are linked into the chain after
their transaction commits, so `seq`, `prev_hash` and `hash` start NULL and are set once;
the append-only triggers allow exactly that one change. Signed heads no longer store the
public key that verified them (the settings hold it): existing heads, which were checked
against their own stored key, prove nothing and are dropped; the worker signs anew.

Revision ID: 3e7d51c0a9b2
Revises: 3b8e61f0c2a7
Create Date: 2026-12-01 23:38:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.types

revision: str = "3e7d51c0a9b2"
down_revision: str | None = "3b8e61f0c2a7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONTENT = (
    "at", "actor_id", "actor_kind", "actor_name", "agency_id", "action", "object_type",
    "object_id", "outcome", "request_id", "client_ip", "details",
)  # fmt: skip
INDEXES = (
    ("ix_audit_agency_seq", ["agency_id", "seq"]),
    ("ix_audit_actor_seq", ["actor_id", "seq"]),
    ("ix_audit_object", ["object_type", "object_id"]),
    ("ix_audit_at", ["at"]),
    ("ix_audit_record_action", ["action"]),
)


def _content_columns() -> list[sa.Column]:
    return [
        sa.Column("at", app.core.types.UTCDateTime(), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("actor_name", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
        sa.Column("agency_id", sa.Uuid(), nullable=True),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("object_type", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("object_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("request_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("client_ip", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
    ]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _drop_append_only(dialect)
    # A new table, filled from the old one (each record keeps its seq as its id), so that
    # both databases get the same primary key change without batch-mode table surgery.
    op.create_table(
        "audit_record_new",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        *_content_columns(),
        sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    )
    columns = ", ".join(CONTENT)
    op.execute(
        f"INSERT INTO audit_record_new (id, seq, {columns}, prev_hash, hash) "
        f"SELECT seq, seq, {columns}, prev_hash, hash FROM audit_record"
    )
    op.drop_table("audit_record")
    op.rename_table("audit_record_new", "audit_record")
    if dialect == "postgresql":
        op.execute("ALTER TABLE audit_record RENAME CONSTRAINT audit_record_new_pkey TO audit_record_pkey")
        op.execute("ALTER SEQUENCE audit_record_new_id_seq RENAME TO audit_record_id_seq")
        op.execute(
            "SELECT setval('audit_record_id_seq', COALESCE((SELECT max(id) FROM audit_record), 0) + 1, false)"
        )
    unchained = sa.text("seq IS NULL")
    with op.batch_alter_table("audit_record", schema=None) as batch_op:
        batch_op.create_index("ix_audit_record_seq", ["seq"], unique=True)
        for name, cols in INDEXES:
            batch_op.create_index(name, cols, unique=False)
        batch_op.create_index(
            "ix_audit_unchained", ["id"], unique=False, postgresql_where=unchained, sqlite_where=unchained
        )

    op.execute("DELETE FROM audit_head")
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.drop_column("public_key")
        batch_op.add_column(
            sa.Column("key_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False)
        )
    _append_only(dialect)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    _drop_append_only(dialect)
    op.execute("DELETE FROM audit_head")
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.drop_column("key_id")
        batch_op.add_column(
            sa.Column("public_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False)
        )
    op.create_table(
        "audit_record_old",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        *_content_columns(),
        sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="audit_record_old_pkey"),
    )
    columns = ", ".join(CONTENT)
    # Records not linked yet had no place in the old chain; they are dropped.
    op.execute(
        f"INSERT INTO audit_record_old (seq, {columns}, prev_hash, hash) "
        f"SELECT seq, {columns}, prev_hash, hash FROM audit_record WHERE seq IS NOT NULL"
    )
    op.drop_table("audit_record")
    op.rename_table("audit_record_old", "audit_record")
    if dialect == "postgresql":
        op.execute("ALTER TABLE audit_record RENAME CONSTRAINT audit_record_old_pkey TO audit_record_pkey")
    with op.batch_alter_table("audit_record", schema=None) as batch_op:
        for name, cols in INDEXES:
            batch_op.create_index(name, cols, unique=False)
    _old_append_only(dialect)


def _unchanged(old: str, new: str, dialect: str) -> str:
    """SQL: every content column of the row is as it was."""
    if dialect == "sqlite":
        return " AND ".join(f"{new}.{c} IS {old}.{c}" for c in ("id", *CONTENT))
    return " AND ".join(
        f"{new}.{c}::text = {old}.{c}::text"
        if c == "details"  # json has no equality operator
        else f"{new}.{c} IS NOT DISTINCT FROM {old}.{c}"
        for c in ("id", *CONTENT)
    )


def _append_only(dialect: str) -> None:
    """Records: no DELETE, and no UPDATE but the one that links an unlinked record, content
    untouched. Signed heads: neither."""
    linking = (
        "OLD.seq IS NULL AND OLD.prev_hash IS NULL AND OLD.hash IS NULL "
        "AND NEW.seq IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.hash IS NOT NULL AND "
        + _unchanged("OLD", "NEW", dialect)
    )
    if dialect == "sqlite":
        op.execute(
            "CREATE TRIGGER audit_record_no_update BEFORE UPDATE ON audit_record "
            f"WHEN NOT ({linking}) "
            "BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_record_no_delete BEFORE DELETE ON audit_record "
            "BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END"
        )
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_head_no_{verb.lower()} BEFORE {verb} ON audit_head "
                "BEGIN SELECT RAISE(ABORT, 'signed audit heads are append-only'); END"
            )
        return
    op.execute(
        "CREATE FUNCTION audit_record_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP = 'UPDATE' AND {linking} THEN RETURN NEW; END IF; "
        "RAISE EXCEPTION 'audit records are append-only'; END $$"
    )
    op.execute(
        "CREATE TRIGGER audit_record_append_only BEFORE UPDATE OR DELETE ON audit_record "
        "FOR EACH ROW EXECUTE FUNCTION audit_record_refuse()"
    )
    op.execute(
        "CREATE FUNCTION audit_head_refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'signed audit heads are append-only'; END $$"
    )
    op.execute(
        "CREATE TRIGGER audit_head_append_only BEFORE UPDATE OR DELETE ON audit_head "
        "FOR EACH ROW EXECUTE FUNCTION audit_head_refuse()"
    )


def _drop_append_only(dialect: str) -> None:
    if dialect == "sqlite":
        for name in (
            "audit_record_no_update", "audit_record_no_delete",
            "audit_head_no_update", "audit_head_no_delete",
        ):  # fmt: skip
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        return
    op.execute("DROP TRIGGER IF EXISTS audit_record_append_only ON audit_record")
    op.execute("DROP FUNCTION IF EXISTS audit_record_refuse()")
    op.execute("DROP TRIGGER IF EXISTS audit_head_append_only ON audit_head")
    op.execute("DROP FUNCTION IF EXISTS audit_head_refuse()")


def _old_append_only(dialect: str) -> None:
    """The triggers of revision b441ffeecafe."""
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_record_no_{verb.lower()} BEFORE {verb} ON audit_record "
                "BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END"
            )
        return
    op.execute(
        "CREATE FUNCTION audit_record_refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'audit records are append-only'; END $$"
    )
    op.execute(
        "CREATE TRIGGER audit_record_append_only BEFORE UPDATE OR DELETE ON audit_record "
        "FOR EACH ROW EXECUTE FUNCTION audit_record_refuse()"
    )
