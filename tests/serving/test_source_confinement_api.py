"""Issue 14 findings 1 and 5 over ``POST /api/orgs/{org}/sources``, as a hostile org admin: the
server's files, another org's folder, orgmem's own home, a project checkout and internal URLs are
refused with 400 naming the path or URL and why (never 201, never 500); names are slugs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orgmem.app import create_app
from orgmem.serving.config import ServeSettings
from tests.connectors.source_builders import make_git_repo
from tests.serving.support import Deployment, make_deployment

PROJECT_CHECKOUT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def confined(tmp_path_factory, tiny_base, memories, run_server) -> Iterator[tuple[Deployment, Path, Path]]:
    """A server whose operator set ORGMEM_SOURCE_ROOTS=<roots>/{org}; an outside folder for escapes."""
    roots = tmp_path_factory.mktemp("source-roots")
    for org in ("acme", "globex"):
        (roots / org / "handbook").mkdir(parents=True)
        (roots / org / "handbook" / "plan.md").write_text(f"# {org} plan\n\nThe {org} secret plan.\n")
    outside = tmp_path_factory.mktemp("outside")
    (outside / "leak.md").write_text("# not acme's\n\nOUTSIDE_MARKER\n")
    (roots / "acme" / "escape").symlink_to(outside, target_is_directory=True)
    make_git_repo(roots / "acme")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ORGMEM_SOURCE_ROOTS", str(roots / "{org}"))
        dep = make_deployment(tmp_path_factory.mktemp("serving"), tiny_base, memories)
        dep.app = create_app(dep.settings, ServeSettings(rate_limit_per_minute=100_000,
                                                         rate_limit_burst=10_000), base=tiny_base)
        dep.url = run_server(dep.app)
        yield dep, roots, outside


def add(dep: Deployment, kind: str, config: dict, name: str = "src", key: str = "acme-admin",
        org: str = "acme") -> httpx.Response:
    return httpx.post(f"{dep.url}/api/orgs/{org}/sources", timeout=30,
                      headers={"Authorization": f"Bearer {dep.keys[key]}"},
                      json={"kind": kind, "name": name, "config": config})


def assert_refused(resp: httpx.Response, *needles: str) -> str:
    assert resp.status_code in (400, 422), (resp.status_code, resp.text)
    message = resp.json()["error"]["message"]
    for needle in needles:
        assert needle in message, message
    return message


def listed(dep: Deployment) -> list[str]:
    headers = {"Authorization": f"Bearer {dep.keys['acme-admin']}"}
    resp = httpx.get(f"{dep.url}/api/orgs/acme/sources", headers=headers)
    return [s["name"] for s in resp.json()]


def test_api_refuses_another_orgs_docs_folder(confined):
    dep, roots, _ = confined
    message = assert_refused(add(dep, "docs", {"path": str(roots / "globex" / "handbook")}),
                             str(roots / "globex" / "handbook"), "outside the allowed source roots")
    assert "ORGMEM_SOURCE_ROOTS" in message
    ok = add(dep, "docs", {"path": str(roots / "acme" / "handbook")}, name="handbook")
    assert ok.status_code == 201, ok.text
    assert listed(dep) == ["handbook"]


def test_api_refuses_etc_and_the_orgmem_home(confined):
    dep, _, _ = confined
    assert_refused(add(dep, "docs", {"path": "/etc"}), "/etc", "outside")
    # refused, without confirming the server's own folders (even to a key that guessed one)
    home = assert_refused(add(dep, "docs", {"path": str(dep.root)}), "own home", "<internal>")
    store = assert_refused(add(dep, "docs", {"path": str(dep.root / "store")}), "own home", "<internal>")
    assert str(dep.root) not in home + store
    assert_refused(add(dep, "slack", {"zip": "/etc/passwd"}), "/etc/passwd")
    assert "src" not in listed(dep)


def test_api_refuses_a_symlink_escaping_the_root(confined):
    dep, roots, outside = confined
    assert_refused(add(dep, "docs", {"path": str(roots / "acme" / "escape")}), str(outside.resolve()))


def test_api_refuses_a_project_checkout_as_git_source(confined):
    dep, roots, _ = confined
    assert_refused(add(dep, "git", {"path": str(PROJECT_CHECKOUT)}), str(PROJECT_CHECKOUT))
    assert add(dep, "git", {"path": str(roots / "acme" / "repo")}, name="code").status_code == 201


@pytest.mark.parametrize("config", [
    {"url": "http://169.254.169.254/latest/meta-data/"},
    {"url": "http://127.0.0.1:9/feed.xml"},
    {"url": "http://[::1]:9/feed.xml"},
    {"url": "http://10.0.0.1/feed.xml"},
])
def test_api_refuses_feed_urls_on_internal_addresses(confined, config):
    dep, _, _ = confined
    host = config["url"].split("/")[2].strip("[]")
    assert_refused(add(dep, "rss", {**config, "timeout_s": 1}), host, "refused")


def test_api_refuses_internal_git_and_slack_urls(confined):
    dep, _, _ = confined
    assert_refused(add(dep, "git", {"url": "file:///etc"}), "file:///etc")
    assert_refused(add(dep, "git", {"url": "http://169.254.169.254/x.git"}), "169.254.169.254")
    assert_refused(add(dep, "slack", {"token_env": "SLACK_TOKEN_ACME", "base_url": "http://169.254.169.254/"}),
                   "169.254.169.254")


def test_api_slack_token_variable_is_the_orgs_own(confined):
    """The admin names the variable holding the token, and the token is sent to base_url: it must not
    name the server's own secrets (ORGMEM_S3_SECRET_ACCESS_KEY ...) or another org's token."""
    dep, _, _ = confined
    for var in ("ORGMEM_S3_SECRET_ACCESS_KEY", "SLACK_TOKEN_GLOBEX", "AWS_SECRET_ACCESS_KEY"):
        assert_refused(add(dep, "slack", {"token_env": var}), var, "SLACK_TOKEN_ACME")


def test_api_source_names_are_slugs(confined):
    dep, roots, _ = confined
    for bad in ("<script>alert(1)</script>", "a/../b", "../x", "Handbook 2"):
        assert_refused(add(dep, "docs", {"path": str(roots / "acme" / "handbook")}, name=bad), "source name")
    assert not any("/" in n or "<" in n for n in listed(dep))


def test_api_refuses_sources_that_cannot_sync(confined):
    dep, roots, _ = confined
    assert_refused(add(dep, "docs", {"path": str(roots / "acme" / "gone")}), "does not exist")
    assert_refused(add(dep, "git", {"path": str(roots / "acme" / "handbook")}), "is not a git repository")


def test_api_source_test_route(confined):
    dep, roots, _ = confined
    folder = roots / "acme" / "tested"
    folder.mkdir()
    assert add(dep, "docs", {"path": str(folder)}, name="tested").status_code == 201
    headers = {"Authorization": f"Bearer {dep.keys['acme-admin']}"}
    ok = httpx.post(f"{dep.url}/api/orgs/acme/sources/tested/test", headers=headers)
    assert ok.status_code == 200 and ok.json()["ok"] is True, ok.text
    folder.rmdir()
    bad = httpx.post(f"{dep.url}/api/orgs/acme/sources/tested/test", headers=headers)
    assert bad.status_code == 200 and bad.json()["ok"] is False and "does not exist" in bad.json()["error"]


def test_api_accepts_no_local_paths_without_roots(confined, monkeypatch):
    dep, roots, _ = confined
    monkeypatch.setattr(dep.settings, "source_roots", [])
    assert_refused(add(dep, "docs", {"path": str(roots / "acme" / "handbook")}, name="noroots"),
                   "no source roots are configured", "ORGMEM_SOURCE_ROOTS")
