"""Conflict detection: the live documents of the correction's audience that state another value."""

from __future__ import annotations

from orgmem.db import session_scope
from orgmem.feedback.conflicts import find_conflicts
from orgmem.feedback.values import changed_values, content_words, says
from orgmem.lineage import get_org
from tests.pipeline.conftest import add_chunks

QUESTION = "What port does the Heron dispatcher listen on?"


def test_documents_with_another_value_are_found_and_agreeing_ones_are_not(org):
    add_chunks(org, ["Intro. The Heron dispatcher listens on port 7415. Routes are cached.",
                     "The Heron dispatcher listens on port 9182 since the migration.",
                     "Ledgerfox retries 17 times."])
    with session_scope() as s:
        org_id = get_org(s, org).id
        found = find_conflicts(s, org_id, "org", QUESTION, "It is port 7415.",
                               "The Heron dispatcher listens on port 9182.")
        other_group = find_conflicts(s, org_id, "eng", QUESTION, "It is port 7415.",
                                     "The Heron dispatcher listens on port 9182.")
    assert [c.excerpt for c in found] == ["The Heron dispatcher listens on port 7415."]
    assert found[0].document.startswith("doc") and found[0].source == "fixture"
    assert other_group == []  # another audience's documents are not this correction's business


def test_values_are_the_words_a_correction_changed():
    old, new = changed_values("The Heron dispatcher listens on port 7415.",
                              "The Heron dispatcher listens on port 9182.", QUESTION)
    assert (old, new) == ({"7415"}, {"9182"})
    assert "the" not in content_words("What is the port?")
    assert says("Port 9182, since May.", {"9182"}) and not says("Port 7415.", {"9182"})
    assert not says("anything", set())


def test_a_word_value_in_the_proposals_frame_conflicts(org):
    add_chunks(org, ["The Basalt alarm code is quartz.", "The Basalt freezer is blue and cold."])
    with session_scope() as s:
        found = find_conflicts(s, get_org(s, org).id, "org", "What is the Basalt alarm code?",
                               "Theron lis on", "The Basalt alarm code is garnet.")
    assert [c.excerpt for c in found] == ["The Basalt alarm code is quartz."]
