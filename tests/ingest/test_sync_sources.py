"""sync_source for docs, slack (export and API) and rss: failures recorded, secrets never stored."""

from __future__ import annotations

from sqlalchemy import select

from orgmem.db import models as m
from orgmem.ingest import add_source, sync_source
from tests.connectors.source_builders import (
    PLANTED,
    ServerState,
    default_slack_api,
    feed_server,
    make_docs_folder,
    make_slack_zip,
    slack_api_server,
)


def sync(session, source, count_tokens, **kw):
    return sync_source(session, source, progress=False, count_tokens=count_tokens, **kw)


def test_docs_broken_pdf_fails_alone_and_is_retried(session, org, tmp_path, count_tokens):
    folder = make_docs_folder(tmp_path)
    source = add_source(session, org, "docs", "handbook", {"path": str(folder)}, audience="staff")
    report = sync(session, source, count_tokens)
    assert report.ok and report.new_versions == 4 and len(report.failures) == 1
    assert "broken.pdf" in report.failures[0][0] and "not a readable PDF" in report.failures[0][1]
    assert set(session.scalars(select(m.Document.audience))) == {"staff"}
    texts = list(session.scalars(select(m.Chunk.text)))
    assert any(t.startswith("[docs:handbook] Team page\n") for t in texts)
    assert not any("SCRIPT_MARKER" in t for t in texts)
    again = sync(session, source, count_tokens)
    assert again.new_versions == 0 and len(again.failures) == 1  # the broken PDF only, again


def test_slack_export_no_secret_stored_and_resync_is_free(session, org, tmp_path, count_tokens):
    path = make_slack_zip(tmp_path / "export.zip")
    source = add_source(session, org, "slack", "workspace", {"zip": str(path)})
    report = sync(session, source, count_tokens)
    assert report.ok and report.new_versions == 5 and report.redactions == 1
    texts = list(session.scalars(select(m.Chunk.text)))
    assert not any(s in t for t in texts for s in PLANTED)
    assert any("[REDACTED:slack-token]" in t for t in texts)
    again = sync(session, source, count_tokens)
    assert again.seen == 0 and again.chunks_added == 0

    edited = [
        {"type": "message", "ts": "1709280900.002000", "user": "U1", "text": "Kestrel freeze starts now"}
    ]
    make_slack_zip(path, extra_general=edited)  # a newer export of the same workspace
    report = sync(session, source, count_tokens)
    assert report.new_versions == 1 and report.unchanged == 4  # only that day's document changed


def test_rss_404_records_error_without_moving_cursor(session, org, count_tokens, loopback_allowed):
    state = ServerState(etag='"e1"')
    with feed_server(state) as url:
        state.serve_rss([("g1", url + "/a", "Heron news", "Heron opened a Lisbon office.")])
        source = add_source(session, org, "rss", "news", {"url": url + "/feed.xml"})
        assert sync(session, source, count_tokens).new_versions == 1
        cursor = dict(source.cursor)
        del state.routes["/feed.xml"]
        state.etag = None
        report = sync(session, source, count_tokens)
    assert "HTTP 404" in report.error and url + "/feed.xml" in report.error
    assert source.cursor == cursor and source.last_error == report.error


def test_slack_api_endless_429_is_recorded_on_the_job(
    session, org, count_tokens, monkeypatch, loopback_allowed
):
    from orgmem.jobs.records import create_job, job_events

    monkeypatch.setenv("SLACK_TEST_TOKEN", "xoxb-test-token")
    state = default_slack_api()
    state.rate_limited.add("conversations.history:C2")
    job = create_job(session, org, "sync")
    with slack_api_server(state) as url:
        source = add_source(
            session, org, "slack", "api", {"token_env": "SLACK_TEST_TOKEN", "base_url": url, "max_retries": 1}
        )
        report = sync(session, source, count_tokens, job_id=job.id)
    assert report.ok and report.new_versions >= 3 and len(report.failures) == 1
    assert "C2" not in source.cursor["channels"]
    errors = [e.message for e in job_events(session, job) if e.level == "error"]
    assert len(errors) == 1 and "HTTP 429" in errors[0] and "#random" in errors[0]
    failure = session.scalar(select(m.SyncFailure))
    assert failure.job_id == job.id and failure.item == "#random (C2)"
