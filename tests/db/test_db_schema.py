"""The schema enforces what the code relies on: foreign keys, vocabularies, uniqueness, UTC times."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orgmem.db.migrate import upgrade
from orgmem.db.models import Checkpoint, Chunk, Org
from orgmem.db.session import dispose_engines, make_engine, session_factory, session_scope


def _org(session: Session, slug: str = "acme") -> Org:
    org = Org(slug=slug, name=slug, gate_config={"min_recall": 0.5})
    session.add(org)
    session.commit()
    return org


def test_foreign_keys_are_enforced(session: Session) -> None:
    org = _org(session)
    session.add(Chunk(org_id=org.id, document_version_id=999, seq=0, chunk_key="k", text="t"))
    with pytest.raises(IntegrityError):
        session.commit()


def test_status_vocabulary_is_enforced(session: Session) -> None:
    org = _org(session)
    session.add(
        Checkpoint(
            id="ck_000000000001",
            org_id=org.id,
            base_model="b",
            base_fingerprint="f",
            memory_kind="cms",
            status="bogus",
            input_digest="d",
            created_by="t",
        )
    )
    with pytest.raises(IntegrityError, match="ck_checkpoints_status|CHECK"):
        session.commit()


def test_slug_unique_and_json_round_trip(session: Session) -> None:
    _org(session)
    session.expire_all()
    assert session.scalar(select(Org.gate_config)) == {"min_recall": 0.5}
    session.add(Org(slug="acme", name="again"))
    with pytest.raises(IntegrityError):
        session.commit()


def test_timestamps_are_utc_aware(session: Session) -> None:
    oslo = timezone(timedelta(hours=1))
    org = Org(slug="acme", name="a", created_at=datetime(2026, 11, 25, 23, 0, tzinfo=oslo))
    session.add(org)
    session.commit()
    session.expire_all()
    created = session.scalar(select(Org.created_at))
    assert created == datetime(2026, 11, 25, 22, 0, tzinfo=UTC)
    assert created.tzinfo is not None


def test_naive_timestamps_are_refused(session: Session) -> None:
    session.add(Org(slug="acme", name="a", created_at=datetime(2026, 1, 1)))
    with pytest.raises(Exception, match="naive datetime"):
        session.commit()


def test_sqlite_connection_settings(tmp_path) -> None:
    """Several processes share the embedded database: FKs on, WAL, wait when busy."""
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
    engine.dispose()


def test_sqlite_writers_wait_for_each_other(tmp_path) -> None:
    """A write session takes the lock up front, so a second writer waits instead of failing."""
    url = f"sqlite:///{tmp_path / 'x.db'}"
    upgrade(url)
    first = session_factory(url, write=True)()
    first.add(Org(slug="first", name="f"))
    first.flush()  # holds the write lock now
    done: list[str] = []

    def second_writer() -> None:
        with session_scope(url, write=True) as second:
            second.execute(select(Org.id)).all()  # a read first: the case deferred transactions get wrong
            second.add(Org(slug="second", name="s"))
        done.append("second")

    thread = threading.Thread(target=second_writer)
    thread.start()
    time.sleep(0.3)
    assert done == []  # waiting for the lock
    first.commit()
    first.close()
    thread.join(10)
    assert done == ["second"]
    with session_scope(url) as check_session:
        assert sorted(check_session.scalars(select(Org.slug))) == ["first", "second"]
    dispose_engines()
