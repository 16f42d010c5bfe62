"""Auto-probes cut from an org's chunks: deterministic, faithful to the text, clear when impossible."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from orgmem.eval import auto_probes
from orgmem.eval.probes import join_cloze

CHUNKS = [
    "# Dock controller\n\nThe dock controller listens on port 6291 and answers health checks on /healthz. "
    "Escalations go to the on-call lead, Ysolde Brannick, through the channel #dock-alerts.\n",
    'DOCK_PORT = 6291\nFLEET_CLUSTER = "basalt-7"\n\ndef battery_floor_percent():\n    return 23\n'
    "MAX_PAYLOAD_KG = 1480  # measured on the QuillLift chassis, do not raise without review\n",
    "[09:14] marit: heads up, the night shift moves to the tamarind_east queue from Monday, ok?\n"
    "[09:15] odile: ack. I will update the runbook, the pager rotation and the wiki today.\n",
]


@dataclass
class Chunk:
    id: str
    text: str


def test_same_seed_same_probes_other_seed_other_probes():
    a = auto_probes(CHUNKS, 8, seed=3)
    assert a == auto_probes(CHUNKS, 8, seed=3)
    assert len(a) == 8 and len({p.fact for p in a}) == 8
    assert a != auto_probes(CHUNKS, 8, seed=4)


def test_probes_rejoin_to_the_source_text_and_mix_kinds():
    probes = auto_probes([Chunk(f"c{i}", t) for i, t in enumerate(CHUNKS)], 12, seed=0)
    for p in probes:
        assert p.kind == "auto" and p.source.startswith("c") and not p.question
        assert join_cloze(p.cloze, p.answer) in CHUNKS[int(p.source[1:])]
    answers = {p.answer for p in probes}
    assert answers & {"6291", "1480", "23", "basalt-7", "tamarind_east", "QuillLift"}  # identifier clozes
    assert any(" " in a for a in answers)  # continuations


def test_identifier_clozes_never_show_the_answer_in_the_prefix():
    probes = auto_probes(CHUNKS, 40, seed=0)
    for p in probes:
        if " " not in p.answer:
            assert p.answer not in p.cloze


def test_impossible_requests_are_explained():
    with pytest.raises(ValueError, match="n must be"):
        auto_probes(CHUNKS, 0)
    with pytest.raises(ValueError, match="too short"):
        auto_probes(["tiny", "x = 1"], 5)
