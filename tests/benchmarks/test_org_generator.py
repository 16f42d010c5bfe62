"""benchmarks/org_generator.py: a deterministic multi-night org, written as the connectors read it."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import tomllib
from collections import Counter
from pathlib import Path

import feedparser
import pytest
import yaml

from benchmarks.org_generator import GeneratorConfig, OrgGenerator, main
from connectors.base import DocumentVersion
from connectors.extract import html_to_text
from connectors.registry import get_connector, parse_config
from orgmem.eval.probes import active_probes, check_unique, contains_answer, join_cloze, load_probes

SMALL = dict(seed=3, nights=3, facts_per_night=10, updates_per_night=2, deletes_per_night=1)
_SLACK_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d\] [^:]+: ")


def slack_docs(zip_path: Path) -> list[DocumentVersion]:
    connector = get_connector("slack")
    items = list(connector.fetch(parse_config("slack", {"zip": str(zip_path)}), None))
    return [i for i in items if isinstance(i, DocumentVersion)]


def current_texts(out: Path) -> dict[str, str]:
    """Every current document as the connectors deliver it, keyed like a probe's ``source``."""
    texts: dict[str, str] = {}
    for root in ("repo", "docs"):
        for path in sorted((out / root).rglob("*")):
            if path.is_file() and ".git" not in path.relative_to(out).parts:
                raw = path.read_text(encoding="utf-8")
                texts[path.relative_to(out).as_posix()] = html_to_text(raw) if path.suffix == ".html" else raw
    for doc in slack_docs(out / "slack" / "export.zip"):
        day = doc.created_at.date().isoformat()
        key = f"slack/export.zip#{doc.metadata['channel']}/{day}"
        lines = [_SLACK_LINE.sub("", line) for line in doc.text.splitlines()[1:]]
        texts[key] = (texts.get(key, "") + "\n" + "\n".join(lines)).strip("\n")
    feed = feedparser.parse((out / "feed" / "feed.xml").read_bytes())
    for entry in feed.entries:
        texts[f"feed/feed.xml#{entry.id}"] = f"{entry.title}\n\n{entry.summary}"
    return texts


def states_at_line_start(text: str, cloze: str, answer: str) -> bool:
    return any(line.startswith(cloze) and line[len(cloze) :].startswith(answer) for line in text.splitlines())


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """SMALL written night by night; per night: summary, current texts, file bytes, HEAD commit."""
    out = tmp_path_factory.mktemp("org")
    gen = OrgGenerator(GeneratorConfig(**SMALL))
    nights = {}
    for n in range(1, SMALL["nights"] + 1):
        summary = gen.write_night(out, n)
        nights[n] = {
            "summary": summary,
            "texts": current_texts(out),
            "probes_file": (out / "probes.jsonl").read_text(),
            "commits": subprocess.run(
                ["git", "-C", str(out / "repo"), "rev-list", "--count", "HEAD"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip(),
            "files": sorted(
                p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and ".git" not in p.parts
            ),
            "feed": len(feedparser.parse((out / "feed" / "feed.xml").read_bytes()).entries),
        }
    return gen, out, nights


def _snapshot(out: Path) -> dict[str, bytes]:
    files = {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and ".git" not in p.parts
    }
    head = subprocess.run(
        ["git", "-C", str(out / "repo"), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout
    return {**files, "HEAD": head.encode()}


def test_same_seed_same_bytes_and_probes_other_seed_differs(tmp_path):
    a, b = OrgGenerator(GeneratorConfig(**SMALL)), OrgGenerator(GeneratorConfig(**SMALL))
    assert a.probes() == b.probes() and a.org_name == b.org_name
    for n in (1, 2):
        a.write_night(tmp_path / "a", n)
        b.write_night(tmp_path / "b", n)
    assert _snapshot(tmp_path / "a") == _snapshot(tmp_path / "b")  # commit hashes included
    other = OrgGenerator(GeneratorConfig(**{**SMALL, "seed": 4}))
    assert other.probes() != a.probes() and other.org_name != a.org_name


def test_probe_records_are_valid_unique_and_load(written):
    gen, out, nights = written
    probes = load_probes(out / "probes.jsonl")  # the header '#' lines are skipped
    assert [p.to_dict() for p in probes] == gen.probes()
    check_unique(probes)
    assert nights[1]["probes_file"].startswith("# Probes for ")
    assert all(p.kind == "fact" and p.question and p.source for p in probes)
    first = [p for p in gen.probes(1)]
    assert len(first) == SMALL["facts_per_night"] and all(
        p["night"] == 1 and not p["replaces"] for p in first
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["org_name"] == gen.org_name and manifest["nights_written"] == 3
    assert manifest["retired"] == gen.retired(3) and len(manifest["nights"]) == 3
    updates = [p for p in gen.probes() if p["replaces"]]
    assert len(updates) >= SMALL["updates_per_night"]  # some updated facts may be retired later


def test_each_cloze_starts_a_line_of_its_source_and_the_answer_follows(written):
    gen, _, nights = written
    for n, night in nights.items():
        texts = night["texts"]
        for probe in active_probes([load(p) for p in gen.probes(n)], n):
            assert probe.source in texts, f"night {n}: {probe.key} source {probe.source} missing"
            text = texts[probe.source]
            assert states_at_line_start(text, probe.cloze, probe.answer), (n, probe.key, probe.cloze, text)
            assert join_cloze(probe.cloze.rstrip(), probe.answer) in text
            assert probe.cloze.strip() and not contains_answer(probe.question, probe.accepted)


def load(raw: dict):
    from orgmem.eval.probes import probe_from_dict

    return probe_from_dict(raw)


def test_updates_rewrite_the_one_statement(written):
    gen, _, nights = written
    for n in (2, 3):
        updated = nights[n]["summary"].updated
        assert len(updated) == SMALL["updates_per_night"]
        everything = "\n".join(nights[n]["texts"].values())
        for probe in gen.probes(n):
            if probe["night"] != n or not probe["replaces"]:
                continue
            assert probe["fact"] in updated
            assert join_cloze(probe["cloze"].rstrip(), probe["answer"]) in nights[n]["texts"][probe["source"]]
            for old in probe["replaces"]:
                assert old != probe["answer"]
                assert join_cloze(probe["cloze"].rstrip(), old) not in everything, (probe, old)


def test_deleted_documents_vanish_and_their_facts_retire(written):
    gen, out, nights = written
    kinds = set()
    for n in (2, 3):
        summary = nights[n]["summary"]
        assert len(summary.deleted) == SMALL["deletes_per_night"] and summary.retired
        for path in summary.deleted:
            kinds.add(path.split("/")[0])
            if not path.startswith("slack/"):
                assert path not in nights[n]["files"] and path in nights[n - 1]["files"]
        current = {p["fact"] for p in gen.probes(n)}
        for fact in summary.retired:
            assert gen.retired(n)[fact] == n and fact not in current
            assert fact in {p["fact"] for p in gen.probes(n - 1)}  # it was true the night before
            assert fact in {p["fact"] for p in gen.retired_probes(n)}
    assert kinds == {"slack", "docs"}  # night 2 deletes a Slack message, night 3 a docs page
    tracked = subprocess.run(
        ["git", "-C", str(out / "repo"), "ls-files"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert all(f"repo/{t}" in nights[3]["files"] for t in tracked)


def test_slack_export_applies_edits_and_drops_deleted_and_noise(written):
    gen, _, nights = written
    slack = {k: v for k, v in nights[2]["texts"].items() if k.startswith("slack/")}
    text = "\n".join(slack.values())
    edited = [
        p for p in gen.probes(2) if p["night"] == 2 and p["replaces"] and p["source"].startswith("slack/")
    ]
    assert edited, "night 2 edits a Slack message"
    for probe in edited:
        assert join_cloze(probe["cloze"].rstrip(), probe["answer"]) in text
        assert all(join_cloze(probe["cloze"].rstrip(), old) not in text for old in probe["replaces"])
    deleted = nights[2]["summary"].retired
    gone = [p for p in gen.retired_probes(2) if p["fact"] in deleted]
    assert gone and all(join_cloze(p["cloze"].rstrip(), p["answer"]) not in text for p in gone)
    assert "wrong channel" not in text and "has joined" not in text and "build finished" not in text
    assert any("thread" in k for k in slack) or len(slack) >= 1


def test_git_has_one_commit_per_night_and_feed_grows(written):
    _, out, nights = written
    assert [nights[n]["commits"] for n in (1, 2, 3)] == ["1", "2", "3"]
    counts = [nights[n]["feed"] for n in (1, 2, 3)]
    assert counts[0] >= 1 and counts == sorted(set(counts))
    feed = feedparser.parse((out / "feed" / "feed.xml").read_bytes())
    assert not feed.bozo
    assert all(e.id and e.link and e.published_parsed for e in feed.entries)
    log = subprocess.run(
        ["git", "-C", str(out / "repo"), "log", "--format=%ad", "--date=short"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert log == ["2026-01-04", "2026-01-03", "2026-01-02"]


def test_nights_must_be_written_in_order(tmp_path):
    gen = OrgGenerator(GeneratorConfig(**SMALL))
    with pytest.raises(ValueError, match="in order"):
        gen.write_night(tmp_path / "x", 2)
    gen.write_night(tmp_path / "x", 1)
    with pytest.raises(ValueError, match="in order"):
        gen.write_night(tmp_path / "x", 1)
    with pytest.raises(ValueError, match="outside"):
        gen.write_night(tmp_path / "x", 4)
    again = OrgGenerator(GeneratorConfig(**SMALL))  # a new generator resumes from the manifest
    assert again.write_night(tmp_path / "x", 2).night == 2
    with pytest.raises(ValueError, match="another generator config"):
        OrgGenerator(GeneratorConfig(**{**SMALL, "seed": 9})).write_night(tmp_path / "x", 3)


def test_sources_mix_and_writing_varies():
    gen = OrgGenerator(
        GeneratorConfig(seed=1, nights=3, facts_per_night=60, updates_per_night=0, deletes_per_night=0)
    )
    facts = list(gen.facts.values())
    by_source = Counter(f.source for f in facts)
    assert by_source == {"code": 63, "docs": 63, "slack": 36, "news": 18}
    docs = [f for f in facts if f.source == "docs"]
    frames = Counter(f.frame.split("/")[-1] for f in docs)
    assert len(frames) >= 12, frames  # sentence frames, bullets, md/html tables, <dl>
    assert {f.frame.split("-")[0] for f in docs} == {"md", "html"}
    code = Counter(f.frame.split("/")[0] for f in facts if f.source == "code")
    assert len(code) >= 6, code  # constants, comments, docstrings, YAML, TOML, Go, TS
    assert len({f.frame for f in facts if f.source == "slack"}) >= 4
    assert len({f.attr.key for f in facts}) >= 15
    assert len({f.id for f in facts}) == len(facts)


def test_cli_writes_every_night(tmp_path, capsys):
    assert (
        main(
            [
                str(tmp_path / "o"),
                "--seed",
                "2",
                "--nights",
                "2",
                "--facts-per-night",
                "5",
                "--updates-per-night",
                "1",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("night 1: 5 new") and lines[1].startswith("night 2: 5 new, 1 updated")
    assert len(load_probes(tmp_path / "o" / "probes.jsonl")) >= 9


def test_larger_run_every_edit_and_delete_form_reads_back(tmp_path):
    """4 nights x 30 facts: both Slack edit forms and both deletion forms occur, and every current
    probe is still stated (cloze + answer) in what the connectors read, while retired ones are not."""
    cfg = GeneratorConfig(seed=0, nights=4, facts_per_night=30, updates_per_night=6, deletes_per_night=3)
    gen = OrgGenerator(cfg)
    for n in range(1, 5):
        gen.write_night(tmp_path, n)
    assert {m.edit_form for m in gen.messages if m.edits} == {"event", "inplace"}
    assert {m.deleted_form for m in gen.messages if m.fact and m.deleted} == {"event", "vanish"}
    texts = current_texts(tmp_path)
    everything = "\n".join(texts.values())
    current = active_probes([load(p) for p in gen.probes(4)], 4)
    for probe in current:
        assert states_at_line_start(texts[probe.source], probe.cloze, probe.answer), probe.key
        assert not any(join_cloze(probe.cloze.rstrip(), old) in everything for old in probe.replaces)
    for probe in gen.retired_probes(4):
        assert join_cloze(probe["cloze"].rstrip(), probe["answer"]) not in everything, probe["fact"]
    assert len(gen.retired(4)) >= 3 and len(current) == len({p["fact"] for p in gen.probes(4)})
    for path in (tmp_path / "repo").rglob("*"):  # the code is real code: it parses
        if path.suffix == ".py":
            ast.parse(path.read_text())
        elif path.suffix in (".yaml", ".yml"):
            assert isinstance(yaml.safe_load(path.read_text()), dict)
        elif path.suffix == ".toml":
            tomllib.loads(path.read_text())


def test_git_and_docs_connectors_deliver_every_current_statement(written):
    gen, out, _ = written
    delivered = []
    for kind, config in (("git", {"path": str(out / "repo")}), ("docs", {"path": str(out / "docs")})):
        connector = get_connector(kind)
        items = list(connector.fetch(parse_config(kind, config), None))
        delivered += [i.text for i in items if isinstance(i, DocumentVersion)]
        assert items and all(isinstance(i, DocumentVersion) for i in items), kind
    text = "\n".join(delivered)
    for probe in gen.probes(3):
        if probe["source"].startswith(("repo/", "docs/")) and not any(
            p["fact"] == probe["fact"] and p["night"] > probe["night"] for p in gen.probes(3)
        ):
            assert join_cloze(probe["cloze"].rstrip(), probe["answer"]) in text, probe
