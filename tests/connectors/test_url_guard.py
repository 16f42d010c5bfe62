"""Issue 14 finding 1, URLs: feeds, linked pages, git clone URLs and the Slack base URL refuse
loopback, link-local, private and metadata addresses unless the operator allows the network;
checked after DNS resolution and on every redirect. No test needs the network."""

from __future__ import annotations

import socket
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from connectors.base import DocumentFailure, SourceError
from connectors.registry import get_connector, parse_config
from orgmem.config import get_settings
from tests.connectors.source_builders import ServerState, feed_server, serve

REAL_GETADDRINFO = socket.getaddrinfo


def fetch(kind: str, config: dict[str, Any]):
    connector = get_connector(kind)
    return list(connector.fetch(parse_config(kind, config), None))


def check(kind: str, config: dict[str, Any]) -> None:
    get_connector(kind).check(parse_config(kind, config))


@pytest.fixture()
def allow(monkeypatch):
    def set_networks(value: str) -> None:
        monkeypatch.setenv("ORGMEM_ALLOWED_NETWORKS", value)
        get_settings.cache_clear()

    return set_networks


def fake_dns(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    """Resolve the given names to the given addresses (in turn, one list per call); log every lookup."""
    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        host = host.decode() if isinstance(host, bytes) else host
        if host not in answers:
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        asked.append(host)
        addrs = answers[host]
        addr = addrs.pop(0) if len(addrs) > 1 else addrs[0]
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (addr, port or 80))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def redirect_to(target: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/iam/", "metadata"),
        ("http://[fd00:ec2::254]/latest/", "metadata"),
        ("http://127.0.0.1:9/feed", "loopback"),
        ("http://localhost:9/feed", "loopback"),
        ("http://10.0.0.8/feed", "private"),
        ("http://192.168.1.1/feed", "private"),
        ("http://[::1]:9/feed", "loopback"),
        ("http://[::ffff:127.0.0.1]:9/feed", "loopback"),
        ("http://0.0.0.0:9/feed", "unspecified"),
        ("http://224.0.0.1/feed", "multicast"),
        ("http://[fe80::1]/feed", "link-local"),
    ],
)
def test_feed_urls_on_internal_addresses_are_refused(url, why):
    with pytest.raises(SourceError, match=why):
        fetch("rss", {"url": url, "timeout_s": 1})
    with pytest.raises(SourceError, match=why) as err:
        check("rss", {"url": url, "timeout_s": 1})
    assert "refused" in str(err.value) and "ORGMEM_ALLOWED_NETWORKS" in str(err.value)


def test_loopback_feed_is_refused_without_an_allow_and_read_with_one(allow):
    state = ServerState()
    with feed_server(state) as url:
        state.serve_rss([("g1", url + "/a", "T", "d")])
        with pytest.raises(SourceError, match="loopback"):
            fetch("rss", {"url": url + "/feed.xml"})
        assert state.requests == []  # refused before connecting
        allow("127.0.0.0/8")
        assert [i.external_id for i in fetch("rss", {"url": url + "/feed.xml"})] == ["g1"]


def test_a_hostname_resolving_to_a_private_address_is_refused(monkeypatch):
    asked = fake_dns(monkeypatch, {"feeds.example.com": ["10.1.2.3"]})
    with pytest.raises(SourceError, match=r"10\.1\.2\.3.*private"):
        fetch("rss", {"url": "https://feeds.example.com/rss", "timeout_s": 1})
    with pytest.raises(SourceError, match=r"feeds\.example\.com.*10\.1\.2\.3.*private"):
        check("rss", {"url": "https://feeds.example.com/rss", "timeout_s": 1})
    assert asked


def test_every_resolved_address_is_checked(monkeypatch):
    def two_answers(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 80)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))]

    monkeypatch.setattr(socket, "getaddrinfo", two_answers)
    with pytest.raises(SourceError, match="169.254.169.254"):
        fetch("rss", {"url": "http://mixed.example.com/rss", "timeout_s": 1})
    with pytest.raises(SourceError, match="169.254.169.254"):
        check("rss", {"url": "http://mixed.example.com/rss", "timeout_s": 1})


def test_dns_rebinding_between_check_and_connect_is_refused(monkeypatch, allow):
    """The name answers a public address to the check, then loopback: the connection is refused too."""
    fake_dns(monkeypatch, {"rebind.example.com": ["93.184.216.34", "127.0.0.1"]})
    with pytest.raises(SourceError, match="127.0.0.1"):
        fetch("rss", {"url": "http://rebind.example.com:9/rss", "timeout_s": 1})


def test_a_redirect_from_an_allowed_server_to_metadata_is_refused(allow):
    allow("127.0.0.0/8")
    with serve(redirect_to("http://169.254.169.254/latest/meta-data/")) as url:
        with pytest.raises(SourceError, match=r"redirect.*169\.254\.169\.254.*metadata"):
            fetch("rss", {"url": url + "/feed.xml", "timeout_s": 2})
        with pytest.raises(SourceError, match="169.254.169.254"):
            check("rss", {"url": url + "/feed.xml", "timeout_s": 2})


def test_allowing_a_network_does_not_allow_the_metadata_address(allow):
    allow("169.254.0.0/16")
    with pytest.raises(SourceError, match="metadata"):
        check("rss", {"url": "http://169.254.169.254/latest/", "timeout_s": 1})


def test_linked_pages_on_internal_addresses_are_per_item_failures(allow):
    allow("127.0.0.0/8")
    state = ServerState()
    with feed_server(state) as url:
        state.serve_rss([("g1", "http://169.254.169.254/latest/", "T", "d")])
        items = fetch("rss", {"url": url + "/feed.xml", "fetch_linked": True, "timeout_s": 2})
    failures = [i for i in items if isinstance(i, DocumentFailure)]
    assert len(failures) == 1 and "169.254.169.254" in failures[0].error and "refused" in failures[0].error


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("file:///etc", "scheme"),
        ("/etc", "scheme"),
        ("ext::sh -c id", "scheme"),
        ("https://169.254.169.254/repo.git", "metadata"),
        ("ssh://git@10.0.0.9/repo.git", "private"),
        ("git@127.0.0.1:org/repo.git", "loopback"),
    ],
)
def test_git_clone_urls_are_confined(url, why):
    with pytest.raises(SourceError, match=why):
        fetch("git", {"url": url})
    with pytest.raises(SourceError, match=why):
        check("git", {"url": url})


def test_slack_base_url_is_confined(monkeypatch):
    monkeypatch.setenv("SLACK_TOKEN_ACME", "xoxb-1")
    for base in ("http://169.254.169.254/api/", "http://127.0.0.1:9/api/"):
        config = {"token_env": "SLACK_TOKEN_ACME", "base_url": base}
        with pytest.raises(SourceError, match="refused"):
            fetch("slack", config)
        with pytest.raises(SourceError, match="refused"):
            check("slack", config)
