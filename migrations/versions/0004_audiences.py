"""Audiences: a lineage per group (head/pin), the audience of checkpoints and serving events,
and the groups an API key may reach.

Existing rows belong to the org audience and keys to no group, which is what the server
defaults say, so upgrading changes nothing that is served.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audience_heads",
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("audience", sa.String(length=64), nullable=False),
        sa.Column("head_checkpoint_id", sa.String(length=32), nullable=True),
        sa.Column("pinned_checkpoint_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_audience_heads_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["head_checkpoint_id"],
            ["checkpoints.id"],
            name=op.f("fk_audience_heads_head_checkpoint_id_checkpoints"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["pinned_checkpoint_id"],
            ["checkpoints.id"],
            name=op.f("fk_audience_heads_pinned_checkpoint_id_checkpoints"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("org_id", "audience", name=op.f("pk_audience_heads")),
    )
    with op.batch_alter_table("checkpoints") as batch:
        batch.add_column(sa.Column("audience", sa.String(length=64), nullable=False, server_default="org"))
    with op.batch_alter_table("serving_events") as batch:
        batch.add_column(sa.Column("audience", sa.String(length=64), nullable=False, server_default="org"))
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("groups", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("groups")
    with op.batch_alter_table("serving_events") as batch:
        batch.drop_column("audience")
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_column("audience")
    op.drop_table("audience_heads")
