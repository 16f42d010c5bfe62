"""``orgmem demo`` end to end on the tiny base, inline (the worker path is covered elsewhere)."""

from __future__ import annotations

import json

from orgmem.config import get_settings
from orgmem.db import session_scope
from orgmem.lineage import get_org, list_tree
from tests.pipeline.conftest import FAST_ENGINE, FAST_PIPELINE
from workers.demo import run_demo


def test_demo_runs_two_nights_and_shows_the_lineage(db, monkeypatch):
    monkeypatch.setenv("ORGMEM_BASE_MODEL", "tiny-random")
    monkeypatch.setenv("ORGMEM_PIPELINE_ENGINE", json.dumps(FAST_ENGINE))
    monkeypatch.setenv("ORGMEM_PIPELINE_OPTIONS", json.dumps(FAST_PIPELINE))
    get_settings.cache_clear()
    lines: list[str] = []
    org = run_demo(lines.append, org="demo-test", inline=True, probes=True)
    text = "\n".join(lines)
    assert org == "demo-test"
    for expected in (
        "before night 1",
        "=== night 1",
        "=== night 2",
        "gate: ",
        "checkpoint tree:",
        "serving history:",
        "demo finished",
    ):
        assert expected in text, expected
    assert "[sync] syncing source code" in text and "[consolidate] committed checkpoint" in text
    with session_scope() as s:
        nodes = list_tree(s, get_org(s, org))
    assert len(nodes) == 2, "one checkpoint per night"
    assert all(f"{n.checkpoint.id} {n.checkpoint.status}" in text for n in nodes)
    night1, night2 = sorted(nodes, key=lambda n: n.checkpoint.created_at)
    history = text.split("$ orgmem history")[1].split("$ orgmem audit")[0]
    assert f"served {night1.checkpoint.id}" in history or night1.checkpoint.id in history, history
    assert night2.checkpoint.id not in history, "between the nights, night 2 did not exist yet"
    audit = text.split("$ orgmem audit")[1]
    for action in ("org.create", "source.add"):
        assert action in audit, audit
