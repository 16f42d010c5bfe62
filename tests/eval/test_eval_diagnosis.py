"""Per-probe diagnosis: answered, old value, another fact's value, stored-not-extractable, not stored."""

from __future__ import annotations

from orgmem.eval.diagnosis import diagnose, diagnosis_counts


def rec(key, answer, *, cloze, hit, reply="", stale=False, question=""):
    return {"key": key, "fact": key.split("@")[0], "answer": answer, "cloze_hit": cloze, "question_hit": hit,
            "question_stale": stale, "reply": reply, "question": question}


def test_each_miss_gets_its_cause():
    records = [
        rec("ceo@1", "Ilse Marwick", cloze=True, hit=True, reply="Ilse Marwick."),
        rec("cto@1", "Dov Achterberg", cloze=True, hit=False, reply="The CTO is Ilse Marwick."),
        rec("port@1", "8843", cloze=True, hit=False, reply="It listens on port 80."),
        rec("bucket@1", "skr-logs", cloze=False, hit=False, reply="I don't know."),
        rec("window@2", "Friday", cloze=True, hit=False, reply="Thursday", stale=True),
        rec("train@1", "Cormorant", cloze=False, hit=None),
    ]
    out = {d["key"]: d for d in diagnose(records)}
    assert out["ceo@1"]["diagnosis"] == "answered"
    assert out["cto@1"]["diagnosis"] == "other_fact_value" and out["cto@1"]["other_facts"] == ["ceo@1"]
    assert out["port@1"]["diagnosis"] == "stored_not_extractable"
    assert out["bucket@1"]["diagnosis"] == "not_stored"
    assert out["window@2"]["diagnosis"] == "old_value"
    assert out["train@1"]["diagnosis"] == "not_asked"
    assert diagnosis_counts(diagnose(records)) == {
        "answered": 1, "old_value": 1, "other_fact_value": 1, "stored_not_extractable": 1, "not_stored": 1,
        "not_asked": 1}


def test_values_that_are_not_interference():
    records = [
        # Another fact's value echoed from the question itself is not interference.
        rec("a@1", "cobalt-9", cloze=False, hit=False, reply="The cluster next to cobalt-7.",
            question="Which cluster replaced cobalt-7?"),
        rec("b@1", "cobalt-7", cloze=True, hit=True, reply="cobalt-7"),
        # A value contained in the probe's own accepted answers does not count either.
        rec("c@1", "Skerrow Air Dispatch", cloze=True, hit=False, reply="Skerrow Air"),
        rec("d@1", "Skerrow Air", cloze=True, hit=True, reply="Skerrow Air"),
        # Without a cloze (in-context baselines) a plain miss is just "missed"; a two-character value
        # of another fact ("22") in the reply is chance, not interference.
        rec("e@1", "7", cloze=None, hit=False, reply="nine, on October 22"),
        rec("f@1", "22", cloze=True, hit=True, reply="22"),
    ]
    out = {d["key"]: d["diagnosis"] for d in diagnose(records, {"c@1": ["Skerrow Air Dispatch"]})}
    assert out == {"a@1": "not_stored", "b@1": "answered", "c@1": "stored_not_extractable",
                   "d@1": "answered", "e@1": "missed", "f@1": "answered"}
