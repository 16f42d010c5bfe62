"""The secret corpus (secret_corpus.py): every planted secret is redacted, every look-alike kept verbatim.

``test_corpus_recall`` prints the counts and recall (run with ``-s``) so the note can quote them.
"""

from __future__ import annotations

import pytest

from orgmem.governance import govern
from tests.governance.secret_corpus import LOOK_ALIKES, SECRETS


def leaked(case) -> list[str]:
    out = govern(case.text, path=case.path)
    problems = [f"value {v!r} kept" for v in case.values if v in out.text]
    if case.kept and case.kept not in out.text:
        problems.append(f"context {case.kept!r} lost: {out.text!r}")
    if out.skip_reason:
        problems.append(f"document skipped ({out.skip_reason})")
    return problems


@pytest.mark.parametrize("case", SECRETS, ids=[c.id for c in SECRETS])
def test_planted_secret_is_redacted_and_its_line_kept(case):
    assert leaked(case) == []


@pytest.mark.parametrize("case", LOOK_ALIKES, ids=[c.id for c in LOOK_ALIKES])
def test_look_alike_survives_verbatim(case):
    out = govern(case.text, path=case.path)
    assert out.text == case.text and out.redactions == []


def test_corpus_recall():
    assert len({c.id for c in SECRETS}) == len(SECRETS) >= 40
    assert len({c.id for c in LOOK_ALIKES}) == len(LOOK_ALIKES) >= len(SECRETS)
    missed = [c.id for c in SECRETS if leaked(c)]
    removed = [c.id for c in LOOK_ALIKES if govern(c.text, path=c.path).text != c.text]
    values = sum(len(c.values) for c in SECRETS)
    print(
        f"\nsecret corpus: {len(SECRETS)} shapes ({values} planted values), recall "
        f"{len(SECRETS) - len(missed)}/{len(SECRETS)}; {len(LOOK_ALIKES)} look-alikes, "
        f"{len(LOOK_ALIKES) - len(removed)}/{len(LOOK_ALIKES)} kept verbatim"
    )
    assert missed == [] and removed == []
