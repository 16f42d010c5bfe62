"""Learning from use: response records, feedback ratings, corrections and each org's review policy.

New tables only: nothing existing changes, so upgrading changes nothing that is served.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 14:17:49
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feedback_settings",
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("auto_approve_role", sa.String(length=16), nullable=True),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_feedback_settings_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_feedback_settings")),
    )
    op.create_table(
        "corrections",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("audience", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("model_answer", sa.Text(), nullable=False),
        sa.Column("proposed_answer", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("response_id", sa.String(length=64), nullable=True),
        sa.Column("answered_by", sa.String(length=500), nullable=True),
        sa.Column("proposer_key_id", sa.Integer(), nullable=True),
        sa.Column("proposer", sa.String(length=200), nullable=False),
        sa.Column("conflicts", sa.JSON(), nullable=False),
        sa.Column("reviewed_by", sa.String(length=200), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_reason", sa.Text(), nullable=True),
        sa.Column("consumed_checkpoint_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected', 'consumed')", name=op.f("ck_corrections_status")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_corrections_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["proposer_key_id"],
            ["api_keys.id"],
            name=op.f("fk_corrections_proposer_key_id_api_keys"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corrections")),
    )
    with op.batch_alter_table("corrections", schema=None) as batch_op:
        batch_op.create_index("ix_corrections_org_id_status", ["org_id", "status"], unique=False)
        batch_op.create_index(
            "ix_corrections_proposer_key_id_created_at", ["proposer_key_id", "created_at"], unique=False
        )

    op.create_table(
        "feedback_ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("rating", sa.String(length=8), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("checkpoint_id", sa.String(length=32), nullable=True),
        sa.Column("correction_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("rating IN ('up', 'down')", name=op.f("ck_feedback_ratings_rating")),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_feedback_ratings_key_id_api_keys"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_feedback_ratings_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_ratings")),
    )
    with op.batch_alter_table("feedback_ratings", schema=None) as batch_op:
        batch_op.create_index("ix_feedback_ratings_org_id_created_at", ["org_id", "created_at"], unique=False)

    op.create_table(
        "response_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.String(length=64), nullable=False),
        sa.Column("choice_index", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("key_groups", sa.JSON(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("audience", sa.String(length=64), nullable=False),
        sa.Column("checkpoint_id", sa.String(length=32), nullable=True),
        sa.Column("checkpoint_label", sa.String(length=500), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_response_records_key_id_api_keys"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_response_records_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_response_records")),
        sa.UniqueConstraint(
            "response_id", "choice_index", name=op.f("uq_response_records_response_id_choice_index")
        ),
    )
    with op.batch_alter_table("response_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_response_records_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_response_records_key_id"), ["key_id"], unique=False)
        batch_op.create_index("ix_response_records_org_id_created_at", ["org_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("response_records", schema=None) as batch_op:
        batch_op.drop_index("ix_response_records_org_id_created_at")
        batch_op.drop_index(batch_op.f("ix_response_records_key_id"))
        batch_op.drop_index(batch_op.f("ix_response_records_expires_at"))

    op.drop_table("response_records")
    with op.batch_alter_table("feedback_ratings", schema=None) as batch_op:
        batch_op.drop_index("ix_feedback_ratings_org_id_created_at")

    op.drop_table("feedback_ratings")
    with op.batch_alter_table("corrections", schema=None) as batch_op:
        batch_op.drop_index("ix_corrections_proposer_key_id_created_at")
        batch_op.drop_index("ix_corrections_org_id_status")

    op.drop_table("corrections")
    op.drop_table("feedback_settings")
