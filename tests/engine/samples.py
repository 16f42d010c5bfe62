"""What the engine tests train on: a first night of two chunks, and a small three-level CMS."""

from __future__ import annotations

from orgmem.memory import CmsConfig

NIGHT1 = [
    "# Runbook: Heron\n\nHeron listens on port 7415. The cache lives in Redis database 3.\n",
    "# Ledgerfox\nINVOICE_DAY = 3\n# Payment terms in days.\nPAYMENT_TERMS_DAYS = 21\n",
]
CMS = CmsConfig(widths=[16, 8, 8], periods=[1, 2, 0], lrs=[1e-2, 1e-2, 1e-2])
