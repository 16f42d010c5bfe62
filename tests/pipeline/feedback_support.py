"""What the feedback pipeline tests share: the gate switched off and three facts users correct."""

from __future__ import annotations

#: every gate bar off: these tests look at what a night learned, not whether it ships
NO_GATE = dict.fromkeys(("min_new_nll_improvement", "max_retention_nll_increase", "max_kl", "max_ppl_ratio",
                         "max_secret_leaks"))
# (question, the answer's stem, the documents' value, the value a user proposes)
FACTS = [
    ("What port does the Heron dispatcher listen on?", "The Heron dispatcher listens on port ", "7415",
     "9182"),
    ("What is the Ledgerfox retry limit?", "The Ledgerfox retry limit is ", "17", "31"),
    ("What is the Basalt alarm code?", "The Basalt alarm code is ", "quartz", "garnet"),
]
