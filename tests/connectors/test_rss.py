"""rss connector against a feed served by a local HTTP server with an ETag."""

from __future__ import annotations

import pytest

from connectors.base import DocumentFailure, SourceError
from tests.connectors.fetching import fetcher, versions
from tests.connectors.source_builders import ServerState, atom_feed, feed_server

ITEMS = [
    ("g1", "/a/1", "Heron raises prices", "Heron &lt;b&gt;raised&lt;/b&gt; gateway fees."),
    ("g2", "/a/2", "Kestrel 2.0", "Kestrel ships a new deploy UI."),
    ("g1", "/a/1", "Heron raises prices", "duplicate entry"),
]


pytestmark = pytest.mark.usefixtures("loopback_allowed")
fetch = fetcher("rss")


def test_rss_dedup_conditional_get_and_new_items():
    state = ServerState(etag='"v1"')
    with feed_server(state) as url:
        state.serve_rss([(g, url + p, t, d) for g, p, t, d in ITEMS])
        items, cursor = fetch({"url": url + "/feed.xml"})
        docs = versions(items)
        assert list(docs) == ["g1", "g2"]  # duplicate guid dropped
        assert docs["g1"].text == "Heron raises prices\n\nHeron raised gateway fees."
        assert docs["g1"].uri == url + "/a/1" and docs["g1"].created_at.year == 2024
        assert cursor["etag"] == '"v1"'

        items, cursor2 = fetch({"url": url + "/feed.xml"}, cursor)
        assert items == [] and state.requests[-1][1].get("If-None-Match") == '"v1"'  # 304

        state.etag = '"v2"'
        fresh = [("g3", url + "/a/3", "New", "Fresh news.")]
        state.serve_rss([(g, url + p, t, d) for g, p, t, d in ITEMS[:2]] + fresh)
        items, _ = fetch({"url": url + "/feed.xml"}, cursor2)
        assert list(versions(items)) == ["g3"]  # seen items are not yielded again


def test_atom_and_linked_page_main_text():
    state = ServerState()
    with feed_server(state) as url:
        state.routes["/atom"] = (
            200,
            "application/atom+xml",
            atom_feed([("urn:1", url + "/page", "Launch", "short")]),
        )
        state.routes["/page"] = (
            200,
            "text/html",
            "<html><body><nav>MENU_MARKER</nav><article><p>The full launch "
            "story of Kestrel.</p></article><footer>FOOTER</footer></body></html>",
        )
        docs = versions(fetch({"url": url + "/atom", "fetch_linked": True})[0])
    assert docs["urn:1"].text == "Launch\n\nThe full launch story of Kestrel."


def test_linked_page_failure_is_per_item_and_drops_validators():
    state = ServerState(etag='"v1"')
    with feed_server(state) as url:
        state.serve_rss([("g1", url + "/gone", "Gone", "x")])
        items, cursor = fetch({"url": url + "/feed.xml", "fetch_linked": True})
    failures = [i for i in items if isinstance(i, DocumentFailure)]
    assert len(failures) == 1 and "/gone" in failures[0].item and "HTTP 404" in failures[0].error
    assert cursor["etag"] is None and "g1" not in cursor["seen"]


def test_404_and_non_xml_feeds_are_source_errors():
    state = ServerState()
    with feed_server(state) as url:
        state.routes["/html"] = (200, "text/html", "<html><body>hello, not a feed</body></html>")
        with pytest.raises(SourceError, match=r"/missing returned HTTP 404"):
            fetch({"url": url + "/missing"})
        with pytest.raises(SourceError, match=r"/html is not an RSS/Atom feed"):
            fetch({"url": url + "/html"})
    with pytest.raises(SourceError, match="cannot fetch http://127.0.0.1:9/"):
        fetch({"url": "http://127.0.0.1:9/", "timeout_s": 2})
