"""The table APScheduler's SQLAlchemy job store keeps its jobs in, declared so migrations own it.

APScheduler creates ``apscheduler_jobs`` itself when the table is missing; declaring it here with
exactly APScheduler's columns lets the Alembic migration create it instead (schema is only ever
made by migrations) and keeps ``alembic check`` free of drift. Rows are written by APScheduler
only (``job_state`` is its pickled job); orgmem reads schedules from the ``schedules`` table.
"""

from __future__ import annotations

from sqlalchemy import Float, LargeBinary, Unicode
from sqlalchemy.orm import Mapped, mapped_column

from orgmem.db.base import Base

TABLE_NAME = "apscheduler_jobs"


class SchedulerJobRow(Base):
    """One APScheduler job (``nightly:<org>``), with the next run time it persisted."""

    __tablename__ = TABLE_NAME

    # Types and sizes match apscheduler.jobstores.sqlalchemy.SQLAlchemyJobStore (3.x).
    id: Mapped[str] = mapped_column(Unicode(191), primary_key=True)
    next_run_time: Mapped[float | None] = mapped_column(Float(25), index=True, nullable=True)
    job_state: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
