"""Per-probe diagnosis: *why* a question was missed, from a report's probes alone.

Recall says how many facts were answered; tuning needs to know what the misses are. A miss whose
cloze also failed was never stored; a cloze hit with a missed question is stored but not
extractable by a paraphrase; a reply that states another fact's value (the CTO's name for the
CEO, 8888 for 8843) is interference between facts of the same shape, which needs a different lever
than more exposures. Pure functions over the dicts of ``EvalReport.to_dict()["probes"]`` (or any
records with the same keys), so a stored results JSON can be re-diagnosed without a model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from orgmem.eval.probes import contains_answer

ANSWERED = "answered"
OLD_VALUE = "old_value"  # an update answered with the value it replaced
OTHER_FACT_VALUE = "other_fact_value"
STORED_NOT_EXTRACTABLE = "stored_not_extractable"
NOT_STORED = "not_stored"
MIN_OTHER_CHARS = 3  # shorter values ("22", "5") turn up in replies by chance
MISSED = "missed"  # no cloze was measured (in-context baselines): only "not answered" is known
NOT_ASKED = "not_asked"
DIAGNOSES = (ANSWERED, OLD_VALUE, OTHER_FACT_VALUE, STORED_NOT_EXTRACTABLE, NOT_STORED, MISSED, NOT_ASKED)


def _accepted(record: Mapping, accepted: Mapping[str, Sequence[str]] | None) -> tuple[str, ...]:
    if accepted and record["key"] in accepted:
        return tuple(accepted[record["key"]])
    return (record["answer"],) if record.get("answer") else ()


def other_values(record: Mapping, records: Sequence[Mapping],
                 accepted: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """Keys of the other probes whose answer the reply states instead of this probe's own.

    A value counts only if it is not also an accepted answer of this probe (nor contained in one)
    and is not written in the question itself (a reply that echoes the question is not
    interference); values under ``MIN_OTHER_CHARS`` characters are ignored (chance matches)."""
    reply, own = record.get("reply") or "", _accepted(record, accepted)
    question = record.get("question") or ""
    found = []
    for other in records:
        if other["key"] == record["key"] or other.get("fact") == record.get("fact"):
            continue
        values = [v for v in _accepted(other, accepted) if len(v.strip()) >= MIN_OTHER_CHARS
                  and not contains_answer(" ".join(own), [v]) and not contains_answer(question, [v])]
        if values and contains_answer(reply, values):
            found.append(other["key"])
    return found


def diagnose_probe(record: Mapping, records: Sequence[Mapping],
                   accepted: Mapping[str, Sequence[str]] | None = None) -> dict:
    """One probe's diagnosis. Precedence: answered, old value (updates), another fact's value, then
    by the cloze: stored but not extractable (cloze hit) or not stored (cloze miss)."""
    out = {"key": record["key"], "other_facts": []}
    if record.get("question_hit") is None:
        out["diagnosis"] = NOT_ASKED
    elif record["question_hit"]:
        out["diagnosis"] = ANSWERED
    elif record.get("question_stale"):
        out["diagnosis"] = OLD_VALUE
    elif others := other_values(record, records, accepted):
        out.update(diagnosis=OTHER_FACT_VALUE, other_facts=others)
    elif record.get("cloze_hit") is None:
        out["diagnosis"] = MISSED
    else:
        out["diagnosis"] = STORED_NOT_EXTRACTABLE if record["cloze_hit"] else NOT_STORED
    return out


def diagnose(records: Sequence[Mapping], accepted: Mapping[str, Sequence[str]] | None = None) -> list[dict]:
    """Every probe of one report, diagnosed against the other probes of the same report (the facts
    true at that night). ``accepted``: probe key -> accepted strings (answer + aliases); without it
    only each record's ``answer`` is used."""
    return [diagnose_probe(r, records, accepted) for r in records]


def diagnosis_counts(diagnosed: Sequence[Mapping]) -> dict[str, int]:
    """How many probes got each diagnosis (only the diagnoses present)."""
    counts = Counter(d["diagnosis"] for d in diagnosed)
    return {name: counts[name] for name in DIAGNOSES if counts[name]}


__all__ = ["DIAGNOSES", "diagnose", "diagnose_probe", "diagnosis_counts", "other_values"]
