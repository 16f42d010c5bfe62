"""docs connector against a folder of md / txt / html / pdf files (PDF made with reportlab)."""

from __future__ import annotations

import os

import pytest

from connectors.base import DocumentFailure, SourceError
from tests.connectors.fetching import run_fetch, versions
from tests.connectors.source_builders import make_docs_folder


def fetch(folder, cursor=None, unstored=()):
    return run_fetch("docs", {"path": str(folder)}, cursor, unstored)


def test_first_sync_extracts_every_format_and_reports_broken_pdf(tmp_path):
    folder = make_docs_folder(tmp_path)
    connector, items, cursor = fetch(folder)
    docs = versions(items)
    assert set(docs) == {"guide.md", "notes.txt", "team/page.html", "report.pdf"}
    assert docs["guide.md"].title == "Onboarding guide"
    html = docs["team/page.html"]
    assert html.title == "Team page" and "Kestrel deploy pipeline" in html.text
    assert "SCRIPT_MARKER" not in html.text and "STYLE_MARKER" not in html.text
    assert "grew 12 percent" in docs["report.pdf"].text
    failures = [i for i in items if isinstance(i, DocumentFailure)]
    assert (
        len(failures) == 1 and "broken.pdf" in failures[0].item and "not a readable PDF" in failures[0].error
    )
    assert connector.skipped["unsupported-type"] == 1  # image.png
    assert "broken.pdf" not in cursor["files"]  # retried next time


def test_resync_change_and_removal(tmp_path):
    folder = make_docs_folder(tmp_path)
    _, _, cursor = fetch(folder)
    _, items, cursor = fetch(folder, cursor)
    assert versions(items) == {}  # only the broken PDF is retried (as a failure again)

    (folder / "notes.txt").write_text("The on-call rotation changes every Tuesday.\n")
    (folder / "guide.md").unlink()
    _, items, cursor = fetch(folder, cursor)
    docs = versions(items)
    assert {k: v.deleted for k, v in docs.items()} == {"notes.txt": False, "guide.md": True}

    # touching a file without changing it (new mtime, same bytes) yields nothing
    os.utime(folder / "notes.txt", (1, 1))
    _, items, _ = fetch(folder, cursor)
    assert versions(items) == {}


def test_unstored_documents_are_read_again(tmp_path):
    folder = make_docs_folder(tmp_path)
    _, _, cursor = fetch(folder, unstored=("notes.txt",))
    _, items, _ = fetch(folder, cursor)
    assert set(versions(items)) == {"notes.txt"}


def test_missing_folder_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        fetch(tmp_path / "missing")
