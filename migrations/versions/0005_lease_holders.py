"""Lease holders: the host, pid and process identity of whoever holds a job's lease.

A consolidation killed on its own machine (a `--inline` run, a worker under kill -9) then frees
its org as soon as its process is provably gone instead of when its lease expires
(``orgmem.jobs.holder``). Existing leases have no holder and keep waiting for their expiry.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("lease_host", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("lease_pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("lease_process", sa.String(length=120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("lease_process")
        batch.drop_column("lease_pid")
        batch.drop_column("lease_host")
