"""Questions the base model writes for derived statements (orgmem/engine/asked.py)."""

from __future__ import annotations

import pytest

from orgmem.engine.asked import clean_question, prompt_for, written_questions
from orgmem.engine.forms import answers, chat_forms
from orgmem.models import load_base

STATEMENT = "Each hub has 22 charging pads, a loading bench and a caged battery store."


def test_clean_question_keeps_a_real_question_about_the_statement():
    assert clean_question(" How many charging pads does each hub have?\n\nSentence: x", STATEMENT) == (
        "How many charging pads does each hub have?")


@pytest.mark.parametrize("raw", [
    "What is the answer to this question?",  # an echo, not a question about the statement
    "Which bus route is the busiest?",  # no word of the statement
    "Each hub has charging pads.",  # not a question
    "Pads?",  # too short
])
def test_clean_question_refuses(raw):
    assert clean_question(raw, STATEMENT) is None


def test_prompt_ends_with_the_statement_and_an_open_question():
    prompt = prompt_for(STATEMENT)
    assert prompt.endswith(f"Sentence: {STATEMENT}\nQuestion:") and prompt.count("Question:") == 5


def test_written_questions_are_deterministic_and_join_the_chat_forms():
    base = load_base("tiny-random")
    texts = answers(["Heron listens on port 7415. The cache lives in Redis database 3."])
    first, again = written_questions(base, texts), written_questions(base, texts)
    assert first == again and set(first) <= set(texts)
    asked = {texts[0]: "Which port does Heron listen on?"}
    forms = chat_forms(["Heron listens on port 7415. The cache lives in Redis database 3."], 1, asked)
    assert any(f.question == "Which port does Heron listen on?" and f.answer == texts[0] for f in forms)
    assert not any(f.question == "Which port does Heron listen on?" for f in chat_forms(
        ["Heron listens on port 7415. The cache lives in Redis database 3."], 1))
