"""Forget receipts, and when a checkpoint object was deleted from the store.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "forget_receipts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("document", sa.String(length=1024), nullable=False),
        sa.Column("document_uri", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("chunks_excluded", sa.Integer(), nullable=False),
        sa.Column("saw", sa.JSON(), nullable=False),
        sa.Column("quarantined", sa.JSON(), nullable=False),
        sa.Column("head_before", sa.String(length=32), nullable=True),
        sa.Column("head_after", sa.String(length=32), nullable=True),
        sa.Column("served_before", sa.String(length=32), nullable=True),
        sa.Column("served_after", sa.String(length=32), nullable=True),
        sa.Column("replay_job", sa.String(length=40), nullable=True),
        sa.Column("deletion_status", sa.String(length=16), nullable=False),
        sa.Column("purge_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("objects_deleted", sa.JSON(), nullable=False),
        sa.Column("bytes_deleted", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deletion_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "deletion_status IN ('none', 'pending', 'done')",
            name=op.f("ck_forget_receipts_deletion_status"),
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_forget_receipts_document_id_documents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_forget_receipts_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forget_receipts")),
    )
    op.create_index(
        op.f("ix_forget_receipts_org_id_created_at"), "forget_receipts", ["org_id", "created_at"]
    )
    with op.batch_alter_table("checkpoint_objects") as batch:
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("checkpoint_objects") as batch:
        batch.drop_column("deleted_at")
    op.drop_index(op.f("ix_forget_receipts_org_id_created_at"), table_name="forget_receipts")
    op.drop_table("forget_receipts")
