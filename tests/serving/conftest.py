"""Fixtures: the tiny base, taught memories, and a real running server (uvicorn on 127.0.0.1,
SQLite, local store) per test module. See ``support.py`` for what the deployment contains."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import torch
import uvicorn

from orgmem.app import create_app
from orgmem.models import load_base
from orgmem.serving.config import ServeSettings
from tests.serving.support import FACTS, Deployment, free_port, make_deployment, teach


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_base():
    return load_base("tiny-random", device="cpu")


@pytest.fixture(scope="session")
def memories(tiny_base) -> dict[str, bytes]:
    return {name: teach(tiny_base, answer) for name, answer in FACTS.items()}


@pytest.fixture(scope="session")
def run_server():
    """Start uvicorn for an app in a thread; returns its URL; stopped at session end."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app, wait: bool = True) -> str:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        servers.append((server, thread))
        if wait:
            assert app.state.serving.wait_ready(30), "the server's base did not load"
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, tiny_base, memories, run_server) -> Iterator[Deployment]:
    """One server per test module (tests that change serving state restore it or use their own)."""
    dep = make_deployment(tmp_path_factory.mktemp("serving"), tiny_base, memories)
    serve = ServeSettings(cache_size=4, max_batch=16, rate_limit_per_minute=100_000, rate_limit_burst=10_000,
                          max_concurrent_per_key=64, default_max_tokens=16)
    dep.app = create_app(dep.settings, serve, base=tiny_base)
    dep.url = run_server(dep.app)
    yield dep
