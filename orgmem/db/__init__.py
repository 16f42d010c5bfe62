"""Relational state of orgmem: models, sessions, migrations.

The schema is created only by the Alembic migrations (``orgmem.db.migrate``); ``Base.metadata``
is what ``alembic check`` compares them against.
"""

from orgmem.db import models
from orgmem.db.base import Base
from orgmem.db.session import dispose_engines, get_engine, make_engine, session_factory, session_scope

__all__ = [
    "Base",
    "dispose_engines",
    "get_engine",
    "make_engine",
    "models",
    "session_factory",
    "session_scope",
]
