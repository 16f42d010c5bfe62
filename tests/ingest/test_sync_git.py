"""sync_source on a real git repository: incremental, governed, chunked, nothing half-written."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import func, select

from orgmem.db import models as m
from orgmem.ingest import add_source, sync_source
from tests.connectors.source_builders import APP_V1, PLANTED, commit_all, make_git_repo


@pytest.fixture()
def repo(tmp_path):
    return make_git_repo(tmp_path)


@pytest.fixture()
def source(session, org, repo):
    src = add_source(session, org, "git", "backend", {"path": str(repo), "max_file_bytes": 3000})
    session.commit()
    return src


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def chunk_texts(session) -> list[str]:
    return list(session.scalars(select(m.Chunk.text)))


def test_first_sync_stores_governed_chunks(session, source, count_tokens):
    report = sync_source(session, source, progress=False, count_tokens=count_tokens)
    assert report.ok and report.cursor_advanced
    assert report.new_versions == 6  # README, app, util, settings, old.md, .gitignore
    assert dict(report.skipped) == {
        "binary": 2,
        "vendored": 1,
        "lockfile": 1,
        "too-large": 1,
        "secret-file": 1,
    }
    assert report.redactions >= 2 and report.chunks_added == count(session, m.Chunk) > 0
    texts = chunk_texts(session)
    assert not any(secret in t for t in texts for secret in PLANTED)
    assert any("[REDACTED:aws-access-key]" in t for t in texts)
    assert all(t.startswith("[git:backend] ") for t in texts)
    rules = set(session.scalars(select(m.Redaction.rule)))
    assert {"aws-access-key", "aws-secret-key"} <= rules
    assert count(session, m.Chunk, m.Chunk.status != "pending") == 0
    version = session.scalar(
        select(m.DocumentVersion).join(m.Document).where(m.Document.external_id == "src/app.py")
    )
    assert version.meta["governance"]["ruleset"].startswith("detect-secrets==") and version.n_chars == len(
        APP_V1
    )
    assert source.cursor["commit"] and source.last_error is None and source.last_sync_at is not None


def test_second_sync_with_no_change_stores_nothing(session, source, count_tokens):
    sync_source(session, source, progress=False, count_tokens=count_tokens)
    before = (count(session, m.DocumentVersion), count(session, m.Chunk), count(session, m.Redaction))
    report = sync_source(session, source, progress=False, count_tokens=count_tokens)
    assert report.seen == 0 and report.new_versions == 0 and report.chunks_added == 0
    assert (count(session, m.DocumentVersion), count(session, m.Chunk), count(session, m.Redaction)) == before


def test_changed_file_one_new_version_deleted_file_tombstone(session, source, repo, count_tokens):
    sync_source(session, source, progress=False, count_tokens=count_tokens)
    chunks_before = count(session, m.Chunk)
    (repo / "src" / "app.py").write_text(APP_V1.replace("Heron gateway", "Osprey gateway"))
    (repo / "docs" / "old.md").unlink()
    commit_all(repo, "switch gateway, drop old notes")
    report = sync_source(session, source, progress=False, count_tokens=count_tokens)
    assert (report.new_versions, report.tombstones) == (1, 1)
    app = session.scalar(select(m.Document).where(m.Document.external_id == "src/app.py"))
    assert count(session, m.DocumentVersion, m.DocumentVersion.document_id == app.id) == 2
    assert report.chunks_added >= 1 and count(session, m.Chunk) == chunks_before + report.chunks_added
    assert any("Osprey gateway" in t for t in chunk_texts(session))
    # pending text the new version no longer has is withdrawn; so is the deleted file's
    assert report.chunks_excluded >= 2
    old = session.scalar(select(m.Document).where(m.Document.external_id == "docs/old.md"))
    assert old.deleted
    statuses = set(
        session.scalars(
            select(m.Chunk.status).join(m.DocumentVersion).where(m.DocumentVersion.document_id == old.id)
        )
    )
    assert statuses == {"excluded"}


def test_missing_repo_is_recorded_and_cursor_stays(session, source, repo, count_tokens):
    sync_source(session, source, progress=False, count_tokens=count_tokens)
    cursor = dict(source.cursor)
    shutil.rmtree(repo)
    report = sync_source(session, source, progress=False, count_tokens=count_tokens)
    assert not report.ok and "does not exist" in report.error and str(repo) in report.error
    assert not report.cursor_advanced and source.cursor == cursor
    assert source.last_error == report.error
    failure = session.scalars(select(m.SyncFailure).order_by(m.SyncFailure.id.desc())).first()
    assert failure.item == "source backend" and str(repo) in failure.error


def test_a_document_that_fails_to_store_is_retried(session, source, count_tokens, monkeypatch):
    import orgmem.ingest.writer as writer

    real = writer.govern

    def flaky(text, *, path="", policy=None):
        if path == "src/util.py":
            raise RuntimeError("governance exploded")
        return real(text, path=path, policy=policy)

    monkeypatch.setattr(writer, "govern", flaky)
    report = sync_source(session, source, progress=False, count_tokens=count_tokens)
    assert report.new_versions == 5 and len(report.failures) == 1 and "src/util.py" in report.failures[0][1]
    assert source.cursor["retry"] == ["src/util.py"] and "1 item(s) failed" in source.last_error
    assert count(session, m.Document, m.Document.external_id == "src/util.py") == 0  # nothing half-written

    monkeypatch.setattr(writer, "govern", real)
    report = sync_source(session, source, progress=False, count_tokens=count_tokens)
    assert (
        report.new_versions == 1 and report.ok and source.cursor["retry"] == [] and source.last_error is None
    )


def test_crash_mid_iteration_keeps_whole_documents_and_the_old_cursor(
    session, source, count_tokens, monkeypatch
):
    from connectors.git import GitConnector

    real_read = GitConnector._read

    def crashing(self, *args, **kwargs):
        for i, item in enumerate(real_read(self, *args, **kwargs)):
            if i == 3:
                raise OSError("disk vanished")
            yield item

    monkeypatch.setattr(GitConnector, "_read", crashing)
    report = sync_source(session, source, progress=False, count_tokens=count_tokens)
    assert "disk vanished" in report.error and source.cursor is None
    stored = count(session, m.DocumentVersion)
    assert stored == report.new_versions > 0
    # every stored version has its chunks
    empty = count(session, m.DocumentVersion, ~m.DocumentVersion.id.in_(select(m.Chunk.document_version_id)))
    assert empty == 0

    monkeypatch.setattr(GitConnector, "_read", real_read)
    report = sync_source(session, source, progress=False, count_tokens=count_tokens)
    assert report.ok and report.unchanged == stored and count(session, m.DocumentVersion) == 6
