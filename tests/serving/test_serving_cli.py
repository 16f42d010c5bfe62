"""``orgmem keys create|list|revoke`` and ``orgmem serve --openapi`` on the embedded defaults."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from orgmem.cli.main import app
from orgmem.config import get_settings
from orgmem.db.session import session_scope
from orgmem.keys import AuthenticationError, authenticate

runner = CliRunner()


def cli(*args: str, code: int = 0):
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout) if code == 0 and "--json" in args else result


def test_keys_lifecycle_through_the_cli():
    cli("init")
    cli("org", "create", "acme")
    shown = cli("keys", "create", "acme", "--role", "admin", "--name", "ops")
    key = next(line.strip() for line in shown.stdout.splitlines() if line.strip().startswith("omk_"))
    assert "shown only now" in shown.stdout
    employee = cli("keys", "create", "acme", "--json")
    assert employee["role"] == "employee" and employee["key"].startswith("omk_")
    listed = cli("keys", "list", "acme", "--json")
    assert [(k["name"], k["role"], k["active"]) for k in listed] == [("ops", "admin", True),
                                                                      ("employee-2", "employee", True)]
    assert key not in cli("keys", "list", "acme").stdout
    url = get_settings().database_url
    with session_scope(url) as s:
        assert authenticate(s, key).role == "admin"
    revoked = cli("keys", "revoke", "acme", employee["prefix"], "--json")
    assert revoked["active"] is False
    with session_scope(url) as s, pytest.raises(AuthenticationError, match="revoked"):
        authenticate(s, employee["key"])
    assert "already revoked" in cli("keys", "revoke", "acme", employee["prefix"], code=3).stderr
    assert "invalid key role" in cli("keys", "create", "acme", "--role", "owner", code=1).stderr
    assert "not found" in cli("keys", "list", "nope", code=2).stderr


def test_serve_prints_the_openapi_spec():
    spec = json.loads(cli("serve", "--openapi").stdout)
    assert "/v1/chat/completions" in spec["paths"] and "/api/orgs/{org}/rollback" in spec["paths"]


def test_orgmem_serve_answers_and_stops_cleanly_on_sigterm(tmp_path):
    """The real command: HTTP on a helper thread, decoding on the main thread; SIGTERM ends both."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx
    import openai

    from tests.serving.support import free_port

    cli("init")
    cli("org", "create", "acme")
    key = cli("keys", "create", "acme", "--json")["key"]
    port = free_port()
    env = {**os.environ, "ORGMEM_BASE_MODEL": "tiny-random", "ORGMEM_SERVE_THREADS": "1"}
    exe = str(Path(sys.executable).with_name("orgmem"))
    proc = subprocess.Popen([exe, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.communicate()[0]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "orgmem serve did not become ready"
            time.sleep(0.3)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key)
        reply = client.chat.completions.create(model="acme", max_tokens=5,
                                               messages=[{"role": "user", "content": "hi"}])
        assert reply.usage.completion_tokens >= 1
        stream = client.chat.completions.create(model="acme", max_tokens=4, stream=True,
                                                messages=[{"role": "user", "content": "hi"}])
        assert sum(1 for _ in stream) >= 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out = proc.communicate(timeout=40)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError("orgmem serve did not stop within 40 s of SIGTERM") from None
    assert proc.returncode == 0, out
