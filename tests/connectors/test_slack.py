"""slack connector: an export zip, and the Web API through a local server speaking its methods."""

from __future__ import annotations

import zipfile

import pytest

from connectors.base import DocumentFailure, SourceError
from tests.connectors.fetching import fetcher, versions
from tests.connectors.source_builders import SLACK_TOKEN, default_slack_api, make_slack_zip, slack_api_server

pytestmark = pytest.mark.usefixtures("loopback_allowed")
fetch = fetcher("slack")


def test_export_threads_edits_and_noise(tmp_path):
    docs = versions(fetch({"zip": str(make_slack_zip(tmp_path / "export.zip"))})[0])
    thread = docs["C1/thread/1709280000.000100"]
    lines = thread.text.splitlines()
    assert lines[0] == "#general thread 2024-03-01 started by alice"
    assert lines[1].endswith("alice: Where do we deploy Kestrel?")
    assert lines[2].endswith("Bob Ruiz: From the #random runner, ask @alice")  # ids → names
    assert thread.author == "alice" and thread.metadata["messages"] == 3
    day = docs["C1/day/2024-03-01"].text
    assert "Deploy window is Friday" in day and "Thursday" not in day  # edit applied
    assert "Standup moved to 10:30" in day
    assert "has joined" not in day and "BOT_NOISE_MARKER" not in day and "DELETED_MARKER" not in day
    assert SLACK_TOKEN in day  # redaction is governance's job, not the connector's
    orphan = docs["C1/thread/1709280700.000800"]  # tombstoned parent dropped, its reply kept
    assert "This message was deleted" not in orphan.text and "reply to a deleted parent" in orphan.text
    assert "C1/day/2024-03-02" in docs and "C2/day/2024-03-01" in docs
    assert not any(k.startswith("G1/") for k in docs)  # private channels only on request


def test_export_private_channels_and_cursor(tmp_path):
    path = make_slack_zip(tmp_path / "export.zip")
    items, cursor = fetch({"zip": str(path), "include_private": True})
    private = versions(items)["G1/day/2024-03-01"]
    assert private.audience == "slack-private:secret-plans"
    again, same = fetch({"zip": str(path), "include_private": True}, cursor)
    assert again == [] and same == cursor  # same zip: nothing read
    _, kept = fetch({"zip": str(path)}, None, unstored=("C1/day/2024-03-01",))
    assert kept == {}  # something unstored: the zip digest is not remembered


def test_corrupt_and_foreign_zips(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(SourceError, match="bad.zip is not a valid zip"):
        fetch({"zip": str(bad)})
    foreign = tmp_path / "photos.zip"
    with zipfile.ZipFile(foreign, "w") as zf:
        zf.writestr("holiday.jpg", b"\xff\xd8")
    with pytest.raises(SourceError, match="photos.zip is not a Slack export: it has no channels.json"):
        fetch({"zip": str(foreign)})
    with pytest.raises(SourceError, match="does not exist"):
        fetch({"zip": str(tmp_path / "none.zip")})


def test_export_unreadable_day_fails_that_channel_only(tmp_path):
    path = tmp_path / "export.zip"
    make_slack_zip(path)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("random/2024-03-05.json", "{not json")
    items, cursor = fetch({"zip": str(path)})
    failures = [i for i in items if isinstance(i, DocumentFailure)]
    assert len(failures) == 1 and "random/2024-03-05.json" in failures[0].item
    assert not any(k.startswith("C2/") for k in versions(items))
    assert "C1/day/2024-03-01" in versions(items) and cursor == {}


def test_web_api_pagination_threads_and_per_channel_cursor(monkeypatch):
    monkeypatch.setenv("SLACK_TEST_TOKEN", "xoxb-test-token")
    state = default_slack_api()
    with slack_api_server(state) as url:
        config = {"token_env": "SLACK_TEST_TOKEN", "base_url": url}
        items, cursor = fetch(config)
        docs = versions(items)
        assert "Bob Ruiz: From the #random runner" in docs["C1/thread/1709280000.000100"].text
        assert "Deploy window is Friday" in docs["C1/day/2024-03-01"].text
        assert not any(k.startswith("G1/") for k in docs)
        assert cursor["channels"] == {"C1": "1709366400.000100", "C2": "1709280000.000500"}
        pages = [p for m, p in state.calls if m == "conversations.history" and p["channel"] == "C1"]
        assert len(pages) >= 3 and all(p.get("oldest") == "0" for p in pages)  # paginated

        state.calls.clear()
        fetch(config, cursor)
        oldest = {p["channel"]: p["oldest"] for m, p in state.calls if m == "conversations.history"}
        assert float(oldest["C1"]) == 1708732800.0  # start of the day 7 days before the newest message


def test_web_api_endless_429_fails_that_channel_and_keeps_its_cursor(monkeypatch):
    monkeypatch.setenv("SLACK_TEST_TOKEN", "xoxb-test-token")
    state = default_slack_api()
    state.rate_limited.add("conversations.history:C2")
    with slack_api_server(state) as url:
        items, cursor = fetch({"token_env": "SLACK_TEST_TOKEN", "base_url": url, "max_retries": 2})
    failures = [i for i in items if isinstance(i, DocumentFailure)]
    assert len(failures) == 1 and failures[0].item == "#random (C2)"
    assert "HTTP 429" in failures[0].error and "conversations.history" in failures[0].error
    assert sum(1 for m, p in state.calls if m == "conversations.history" and p["channel"] == "C2") == 3
    assert "C2" not in cursor["channels"] and "C1" in cursor["channels"]


def test_web_api_auth_problems_are_source_errors(monkeypatch):
    with pytest.raises(SourceError, match="SLACK_MISSING_TOKEN"):
        fetch({"token_env": "SLACK_MISSING_TOKEN"})
    monkeypatch.setenv("SLACK_TEST_TOKEN", "xoxb-wrong")
    with slack_api_server(default_slack_api()) as url:
        with pytest.raises(SourceError, match="invalid_auth"):
            fetch({"token_env": "SLACK_TEST_TOKEN", "base_url": url})
