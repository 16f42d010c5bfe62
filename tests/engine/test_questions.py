"""Question pools and answer forms built by rule from a statement's own structure."""

from __future__ import annotations

from orgmem.engine.forms import Unit, split_units
from orgmem.engine.questions import embedded_clause, fronted_question, unit_fact


def test_fronting_uses_aux_inversion_or_do_support():
    assert fronted_question("Each hub has", "how many charging pads") == \
        "How many charging pads does each hub have?"
    assert fronted_question("The dispatch on-call lead is", "who") == "Who is the dispatch on-call lead?"
    assert fronted_question("The mobile team releases", "what") == "What does the mobile team release?"
    assert fronted_question("The night crew rotated", "when") == "When did the night crew rotate?"


def test_embedded_clause_keeps_statement_order():
    assert embedded_clause("Each hub has", "how many charging pads") == "how many charging pads each hub has"


def test_every_salient_span_is_asked_in_many_phrasings_with_several_answers():
    unit = Unit("The weekly sync for Kestrel Freight starts at 09:40 in room Bolt-7.", "Meetings")
    fact = unit_fact(unit, org="Kestrel Freight")
    assert fact is not None
    assert len(fact.questions) >= 10 and len(fact.answers) >= 2
    assert any("room" in q for q in fact.questions) and any(q.startswith("When") for q in fact.questions)
    asks_time = [q for q in fact.questions if "when" in q.lower()]
    assert asks_time and all("09:40" not in q for q in asks_time)  # a question never holds its answer
    assert unit.text in fact.answers and any(a.endswith("09:40.") for a in fact.answers)


def test_code_assignment_asks_by_identifier_and_answers_value_first():
    unit = next(u for u in split_units("# Payment terms in days.\nPAYMENT_TERMS_DAYS = 21\n") if u.value)
    fact = unit_fact(unit)
    assert fact is not None
    assert "What is PAYMENT_TERMS_DAYS set to?" in fact.questions
    assert all("21" not in q for q in fact.questions)
    assert "PAYMENT_TERMS_DAYS is 21." in fact.answers


def test_statement_with_nothing_to_retrieve_has_no_fact():
    assert unit_fact(Unit("the fix is deployed now")) is None
