"""Salient spans and the questions that ask for them; key-value and code-return units."""

from __future__ import annotations

from orgmem.engine.forms import Unit, chat_forms, split_units, unit_chat_questions
from orgmem.engine.spans import org_name, salient_spans, span_questions


def test_spans_merge_neighbours_and_skip_a_sentence_opening_word():
    spans = [s.text for s in salient_spans("Our office is at 14 Calloway Wharf, opened on Thursday 06:30.")]
    assert spans == ["14 Calloway Wharf", "Thursday 06:30"]
    assert [s.text for s in salient_spans("The VPN gateway is vpn-fjord.example.net.")] == [
        "VPN", "vpn-fjord.example.net"]


def test_span_questions_ask_for_the_value_with_the_facts_own_words():
    assert span_questions("The dispatch on-call lead is Tobiah Renkvist.") == [
        "The dispatch on-call lead is who?"]
    assert span_questions("Each hub has 22 charging pads, a bench and a store.") == [
        "Each hub has how many charging pads?"]
    assert span_questions("The weekly deploy window is Thursday 06:30 (UK time).") == [
        "The weekly deploy window is when?"]
    assert span_questions("Spare drones are kept at the depot in Hollins Yard.") == [
        "Spare drones are kept at the depot in where?"]
    assert span_questions("nothing to ask here at all") == []


def test_org_name_is_the_name_most_chunks_repeat():
    chunks = ["Kestrel Freight ships.", "At Kestrel Freight we plan. Tallinn Port is busy.",
              "Kestrel Freight hires.", "Tallinn Port again."]
    assert org_name(chunks) == "Kestrel Freight"
    assert org_name(["Alone Name here."]) == ""


def test_key_value_documents_keep_the_key_path():
    yaml = "# Production deployment.\nregion: eu-north-1\n\ndispatch:\n  replicas: 14\n  memory: 3Gi\n"
    units = split_units("[git:repo] deploy/prod.yaml\n" + yaml)
    assert [u.text for u in units] == ["region: eu-north-1", "dispatch replicas: 14", "dispatch memory: 3Gi"]
    assert units[1].subject == "dispatch replicas" and units[1].context == "Production deployment."


def test_code_return_under_a_condition_becomes_a_statement():
    code = ('def swap_seconds(model: str) -> int:\n    """Time to swap a battery."""\n'
            '    if model == "SK-4":\n        return 74\n    raise KeyError(model)\n')
    texts = [u.text for u in split_units(code)]
    assert 'swap_seconds("SK-4") returns 74: Time to swap a battery for "SK-4".' in texts


def test_chat_questions_mix_topic_value_and_org_and_skip_units_without_a_fact():
    unit = Unit("The internal wiki is called Wingspan.", "Tools")
    qs = unit_chat_questions(unit, 3, org="Skerrow Air")
    assert qs[1] == "The internal wiki is called what?"
    assert any("Skerrow Air" in q for q in qs) and len(qs) == 3
    assert unit_chat_questions(Unit("is the fix deployed?"), 3, org="Skerrow Air") == []
    code = Unit("DISPATCH_PORT = 8843.", "", "DISPATCH_PORT")
    assert any("the dispatch port" in q for q in unit_chat_questions(code, 3))
    forms = chat_forms(["Skerrow Air hub.\n\nSkerrow Air pad.", "Skerrow Air: the wiki is called Wingspan.",
                        "Skerrow Air lab."], 3)
    assert forms and all(f.answer for f in forms)
