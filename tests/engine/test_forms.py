"""Training forms derived from raw text: code, prose (runbook, news), chat logs."""

from __future__ import annotations

from orgmem.engine.forms import (
    Unit,
    chat_forms,
    gloss_question,
    leading_noun_phrase,
    split_units,
    unit_questions,
    value_answer,
)

CODE = '''"""Ledgerfox invoicing settings."""

# Payment terms in days for all Baltic customers.
PAYMENT_TERMS_DAYS = 21
MAX_RETRIES = 5


def invoice_number(year: int, seq: int) -> str:
    """Ledgerfox invoice numbers look like KF-2026-000123."""
    return f"KF-{year}-{seq:06d}"
'''

RUNBOOK = """# Runbook: Heron route planner

Heron listens on port 7415 and keeps its route cache in Redis database 3.

## Limits
- The planner refuses cargo heavier than 26 tonnes per container.
1. Restart the cache warmer with `heronctl warm --all`.
"""

NEWS = """# Company news, November 2026

Kestrel Freight signed a five-year contract with the port of Klaipeda. The new warehouse in Muuga
opens in March 2027 and holds 4,800 pallets.
"""

CHAT = """#ops
[09:14] marit: heads up, the staging db password rotates every friday now
joosep: The VPN endpoint is vpn2.kestrel.ee
"""


def test_code_units_pair_comments_with_assignments_and_docstrings_with_defs():
    units = split_units(CODE)
    texts = [u.text for u in units]
    assert "Payment terms in days for all Baltic customers: PAYMENT_TERMS_DAYS = 21." in texts
    assert "MAX_RETRIES = 5." in texts
    doc = next(u for u in units if "KF-2026" in u.text)
    assert doc.subject == "invoice_number"
    assert all(u.context == "Ledgerfox invoicing settings" for u in units)
    qs = unit_questions(next(u for u in units if u.subject == "PAYMENT_TERMS_DAYS"))
    assert any("PAYMENT_TERMS_DAYS" in q for q in qs)


def test_prose_units_sentences_list_items_and_headings_as_context():
    units = split_units(RUNBOOK)
    texts = [u.text for u in units]
    assert texts[0] == "Heron listens on port 7415 and keeps its route cache in Redis database 3."
    assert "The planner refuses cargo heavier than 26 tonnes per container." in texts
    assert "Restart the cache warmer with `heronctl warm --all`." in texts
    assert units[0].context == "Runbook: Heron route planner"
    assert units[1].context == "Limits"
    assert unit_questions(units[0])[0] == "Tell me about Heron."
    planner = unit_questions(units[1])[0]
    assert "planner (Limits)" in planner  # no proper noun: the section names the topic


def test_news_sentences_split_and_names_become_topics():
    units = split_units(NEWS)
    assert len(units) == 2 and units[1].text.startswith("The new warehouse in Muuga opens")
    topics = " ".join(q for u in units for q in unit_questions(u))
    assert "Kestrel Freight" in topics and "Muuga" in topics


def test_chat_lines_drop_speaker_and_time():
    units = split_units(CHAT)
    assert [u.text for u in units] == ["heads up, the staging db password rotates every friday now",
                                       "The VPN endpoint is vpn2.kestrel.ee"]
    assert unit_questions(units[1])[0] == "What is the VPN endpoint?"
    assert any("staging db password" in q for q in unit_questions(units[0]))


def test_leading_pronoun_takes_the_previous_subject():
    units = split_units("Osprey is the billing gateway. It listens on port 6120.\n\nIt is a new paragraph.")
    assert [u.text for u in units] == ["Osprey is the billing gateway.", "Osprey listens on port 6120.",
                                       "It is a new paragraph."]
    assert leading_noun_phrase("If the settlement queue is long, scale.") == "settlement queue"


def test_is_shape_and_noun_phrase():
    assert unit_questions(Unit("Our internal wiki is Bookshelf."))[0] in (
        "What is our internal wiki?", "Tell me about our internal wiki.")
    assert leading_noun_phrase("Kestrel Freight signed a contract.") == "Kestrel Freight"
    assert leading_noun_phrase("Routes older than 45 minutes are stale.") == "Routes older"


def test_forms_are_deterministic_and_answers_are_the_statements_or_their_values():
    a, b = chat_forms([CODE, RUNBOOK, NEWS, CHAT]), chat_forms([CODE, RUNBOOK, NEWS, CHAT])
    assert a == b and len(a) >= 12
    units = [u for c in (CODE, RUNBOOK, NEWS, CHAT) for u in split_units(c)]
    assert all(f.answer in {value_answer(u) for u in units} for f in a)
    assert any(f.answer == "The payment terms days (PAYMENT_TERMS_DAYS) is 21. Payment terms in days for all "
               "Baltic customers." for f in a)
    assert split_units("") == [] and split_units("ok\n\nyes") == []


def test_assignments_answer_value_first_and_are_asked_in_their_comment_words():
    code = ('# Kubernetes cluster that runs the production fleet services\n'
            'FLEET_CLUSTER = "cobalt-9"\n'
            'DISPATCH_PORT = 8843  # dispatch API; the hub tablets talk to it over the site VPN\n'
            'RETURN_BATTERY_PERCENT = 27  # below this a drone abandons the job and flies home\n')
    units = {u.subject: u for u in split_units(code)}
    port = units["DISPATCH_PORT"]
    assert (port.value, port.gloss) == ("8843", "dispatch API; the hub tablets talk to it over the site VPN")
    assert port.text.startswith("DISPATCH_PORT = 8843")  # the statement form keeps the source line
    assert value_answer(port).startswith("The dispatch port (DISPATCH_PORT) is 8843. Dispatch API;")
    assert value_answer(units["FLEET_CLUSTER"]).startswith("The fleet cluster (FLEET_CLUSTER) is cobalt-9.")
    asked = gloss_question(units["FLEET_CLUSTER"])
    assert asked == "What is the kubernetes cluster that runs the production fleet services?"
    assert gloss_question(units["RETURN_BATTERY_PERCENT"]) is None  # not a noun phrase
    prose = split_units("Heron listens on port 7415 and keeps its cache in Redis database 3.")[0]
    assert value_answer(prose) == prose.text and gloss_question(prose) is None


def test_value_answers_can_be_switched_off():
    code = "DISPATCH_PORT = 8843  # dispatch API\n"
    on, off = chat_forms([code]), chat_forms([code], value_answers=False)
    assert {f.answer for f in on} == {"The dispatch port (DISPATCH_PORT) is 8843. Dispatch API."}
    assert {f.answer for f in off} == {u.text for u in split_units(code)}
