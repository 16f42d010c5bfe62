"""Probe files: validation that names the bad line, fact history, answer matching."""

from __future__ import annotations

import json

import pytest

from orgmem.errors import ConflictError
from orgmem.eval.probes import (
    Probe,
    ProbeError,
    active_probes,
    contains_answer,
    join_cloze,
    load_probes,
    save_probes,
)


def write(tmp_path, lines):
    path = tmp_path / "probes.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_round_trip_and_sample_org_format(tmp_path):
    probes = [Probe(fact="a", cloze="x is", answer="1", aliases=("one",), night=2, replaces=("0",))]
    save_probes(probes, tmp_path / "p.jsonl")
    assert load_probes(tmp_path / "p.jsonl") == probes
    # The sample org's probes name the fact "id"; both spellings load.
    path = write(tmp_path, ['{"id": "heron-port", "cloze": "Heron listens on port", "answer": "7415"}'])
    assert load_probes(path)[0].fact == "heron-port"


@pytest.mark.parametrize(("line", "message"), [
    ('{"fact": "a", "cloze": "x"', "invalid JSON"),
    ('{"fact": "a", "cloze": "x is"}', "'answer'"),
    ('{"fact": "a", "cloze": "", "answer": "1"}', "'cloze'"),
    ('{"fact": "a", "cloze": "x", "answer": "1", "night": 0}', "'night'"),
    ('{"fact": "a", "cloze": "x", "answer": "1", "aliases": "one"}', "'aliases'"),
    ('{"fact": "a", "cloze": "x", "answer": "1", "colour": "red"}', "unknown field"),
    ('["a"]', "expected a JSON object"),
])
def test_bad_lines_are_named(tmp_path, line, message):
    path = write(tmp_path, ["# comment", "", '{"fact": "ok", "cloze": "x is", "answer": "1"}', line])
    with pytest.raises(ProbeError, match=message) as exc:
        load_probes(path)
    assert f"{path}:4" in str(exc.value)


def test_duplicates_missing_and_empty_files(tmp_path):
    row = json.dumps({"fact": "a", "cloze": "x is", "answer": "1"})
    with pytest.raises(ConflictError, match="a@1"):
        load_probes(write(tmp_path, [row, row]))
    with pytest.raises(ProbeError, match="not found"):
        load_probes(tmp_path / "nope.jsonl")
    with pytest.raises(ProbeError, match="no probes"):
        load_probes(write(tmp_path, ["# only a comment"]))


def test_active_probes_follow_fact_history():
    old = Probe(fact="port", cloze="p", answer="6291", night=1)
    new = Probe(fact="port", cloze="p", answer="6317", night=2, replaces=("6291",))
    later = Probe(fact="lead", cloze="l", answer="Ysolde", night=3)
    assert active_probes([old, new, later], night=1) == [old]
    assert active_probes([old, new, later], night=2) == [new]
    assert active_probes([old, new, later]) == [new, later]


def test_contains_answer_is_whole_token_and_case_insensitive():
    assert contains_answer("It listens on port 6291.", ["6291"])
    assert not contains_answer("It listens on port 16291.", ["6291"])
    assert contains_answer("led by  MARIT oja", ["Marit Oja"])
    assert not contains_answer("Ojama", ["Oja"])
    assert contains_answer("cluster basalt-2 now", ["basalt-2"])
    assert not contains_answer("cluster basalt-23", ["basalt-2"])
    assert not contains_answer("anything", [""])


def test_join_cloze():
    assert join_cloze("port", "6291") == "port 6291"
    assert join_cloze('HOST = "', "tamarind") == 'HOST = "tamarind'
    assert join_cloze("port ", "6291") == "port 6291"
