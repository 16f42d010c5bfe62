"""The console in a real headless Chromium (Debian's ``chromium``, driven by Playwright) against a
real uvicorn server: log in, watch a job appear, pin, roll back with a reason, read the history,
chat, forget, read the audit trail, log out. Screenshots of each step are kept in
``$ORGMEM_ARTIFACTS_DIR`` (default ``tests/artifacts/console``). Without chromium or Playwright the
test is skipped with the reason, except under ``CI=true``, where that is a failure."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from orgmem.app import create_app
from tests.console.conftest import serve_settings
from tests.serving.support import free_port

CHROMIUM = os.environ.get("ORGMEM_CHROMIUM", "/usr/bin/chromium")
#: Screenshots go to <artifacts>/console; the suite keeps them (gitignored under tests/).
ARTIFACTS = Path(os.environ.get("ORGMEM_ARTIFACTS_DIR") or Path(__file__).parents[1] / "artifacts")
ARTIFACTS = ARTIFACTS / "console"


def _require_browser() -> None:
    reason = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "playwright is not installed: .venv/bin/pip install -e '.[dev]'"
    if reason is None and not os.access(CHROMIUM, os.X_OK):
        reason = f"{CHROMIUM} not found: apt-get install -y chromium (or set ORGMEM_CHROMIUM)"
    if reason is None:
        return
    print(f"console browser test: {reason}")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def server(console_env, tiny_base) -> Iterator[str]:
    dep, _ = console_env
    dep.app = create_app(dep.settings, serve_settings(), base=tiny_base)
    server = uvicorn.Server(uvicorn.Config(dep.app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    assert dep.app.state.serving.wait_ready(30), "the server's base did not load"
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def browser_ok() -> None:
    _require_browser()


@pytest.fixture
def page(browser_ok, server) -> Iterator:  # browser_ok first: no server started for a skipped test
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        context = browser.new_context(base_url=server, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(20_000)
        tab = context.new_page()
        tab.console_errors = []  # script errors and anything the page's CSP blocked (not HTTP statuses)
        tab.on("pageerror", lambda exc: tab.console_errors.append(str(exc)))
        tab.on("console", lambda msg: tab.console_errors.append(msg.text)
               if msg.type == "error" and "Failed to load resource" not in msg.text else None)
        try:
            yield tab
        finally:
            browser.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_admin_logs_in_pins_rolls_back_chats_and_forgets(page, console_env):
    from playwright.sync_api import expect

    from orgmem.ops.jobs import create_sync

    dep, data = console_env
    started = time.time()
    ck1, ck2 = dep.checkpoints["acme-1"], dep.checkpoints["acme-2"]

    page.goto("/console")
    expect(page).to_have_url(re.compile(r"/console/login$"))
    page.fill("#api_key", "omk_" + "x" * 43)
    page.click("#login")
    expect(page.locator("#login-error")).to_contain_text("invalid API key")
    shot(page, "01-login-refused")

    page.fill("#api_key", dep.keys["acme-admin"])
    page.click("#login")
    expect(page.locator("#flash")).to_contain_text("logged in to acme")
    expect(page.locator("#served")).to_have_text(ck2)
    expect(page.locator("#pending")).to_contain_text("secret.md")
    job = create_sync("acme", actor="test")  # appears without a reload: the jobs table refreshes itself
    expect(page.locator(f'#jobs tr[data-job="{job}"]')).to_be_visible()
    shot(page, "02-overview")

    page.click("nav.tabs >> text=Checkpoints")
    expect(page.locator(f"#ck-{ck2} .served-badge")).to_be_visible()
    expect(page.locator("#charts svg polyline").first).to_be_visible()
    page.click(f'#ck-{ck1} a[data-action="pin"]')
    expect(page.locator("#confirm-summary")).to_contain_text(ck1)
    page.fill("#reason", "known good")
    page.click("#confirm")
    expect(page.locator("#flash")).to_contain_text(f"pinned {ck1}")
    expect(page.locator(f"#ck-{ck1} .pin-badge")).to_be_visible()
    expect(page.locator(f"#ck-{ck1} .served-badge")).to_be_visible()
    shot(page, "03-pinned")

    page.click(f'#ck-{ck1} a[data-action="rollback"]')
    page.click("#confirm")  # the reason is required: the browser does not submit the form
    expect(page.locator("#confirm-summary")).to_be_visible()
    page.fill("#reason", "bad night: wrong vault code")
    page.click("#confirm")
    expect(page.locator("#flash")).to_contain_text(f"rolled back to {ck1}")
    expect(page.locator("#head")).to_have_text(ck1)
    shot(page, "04-rolled-back")

    page.click("nav.tabs >> text=Serving history")
    expect(page.locator("#history")).to_contain_text("bad night: wrong vault code")
    expect(page.locator("#history")).to_contain_text("known good")
    shot(page, "05-history")

    page.click("nav.tabs >> text=Checkpoints")
    page.click(f'#ck-{ck2} a[data-action="chat"]')
    expect(page.locator("#chat-model")).to_have_value(f"acme@{ck2}")
    page.fill("#chat-input", "What is the vault code?")
    page.click("#chat-send")
    reply = page.locator("#chat-log li.assistant")
    expect(reply).to_have_count(1)
    expect(reply).to_contain_text(f"checkpoint {ck2}")  # the checkpoint that answered
    expect(page.locator("#chat-log li.user")).to_have_text("What is the vault code?")
    shot(page, "06-chat")

    page.click("nav.tabs >> text=Overview")
    page.locator("#pending tr", has_text="secret.md").locator("a", has_text="Forget").click()
    page.fill("#reason", "contains a secret")
    page.click("#confirm")
    expect(page.locator("#flash")).to_contain_text("forgot 'secret.md'")
    expect(page.locator("#flash")).to_contain_text(data.candidate)
    shot(page, "07-forgot")

    page.click("nav.tabs >> text=Audit")
    expect(page.locator('#audit tr[data-action="document.forget"]')).to_contain_text("secret.md")
    expect(page.locator('#audit tr[data-action="serving.rollback"]')).to_be_visible()
    shot(page, "08-audit")

    page.click("#logout")
    expect(page.locator("#api_key")).to_be_visible()
    assert page.console_errors == [], page.console_errors
    for name in ("01-login-refused", "02-overview", "03-pinned", "04-rolled-back", "05-history", "06-chat",
                 "07-forgot", "08-audit"):
        png = ARTIFACTS / f"{name}.png"
        assert png.stat().st_mtime >= started - 1 and png.read_bytes()[:4] == b"\x89PNG", png
