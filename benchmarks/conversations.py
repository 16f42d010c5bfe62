"""What recording one chat turn costs the reply it follows: ``record_turn`` (policy read, daily-cap
count, governance, chunking, the document, version, chunks and turn rows) on embedded SQLite.

The turn listener runs before a non-streamed reply's JSON is returned, so this is added latency
for orgs that record conversations (orgs that do not pay one primary-key read).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/conversations.py [--turns 100]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from orgmem.chunking import token_counter
from orgmem.db.migrate import upgrade
from orgmem.db.session import session_scope
from orgmem.ingest.conversations import ConversationSettings, TurnInput, enable, record_turn
from orgmem.keys import create_key
from orgmem.lineage import create_org
from orgmem.models.tiny import build_tiny_tokenizer

QUESTION = "How does the Heron dispatcher pick a route when the Redis cache is stale? " * 4
ANSWER = "Heron listens on port 7415; routes older than 45 minutes are stale and get rebuilt. " * 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        with session_scope(url, write=True) as s:
            org = create_org(s, "acme", "Acme", actor="bench")
            enable(s, org, actor="bench")
            key = create_key(s, org, "employee", actor="bench").row
            s.flush()
            org_id, key_id = org.id, key.id
        count = token_counter(build_tiny_tokenizer())
        cfg = ConversationSettings(turns_per_key_per_day=10**9)
        times = []
        for i in range(args.turns):
            turn = TurnInput(org_id, key_id, (), f"{QUESTION}{i}", ANSWER, "chatcmpl-bench", "base")
            t0 = time.perf_counter()
            with session_scope(url, write=True) as s:
                done = record_turn(s, turn, count_tokens=count, settings=cfg)
            times.append(time.perf_counter() - t0)
            assert done.turn_id, done.skipped
    times.sort()
    print(f"turns={args.turns} chars/turn={len(QUESTION) + len(ANSWER) + 2} "
          f"median_ms={statistics.median(times) * 1000:.1f} p90_ms={times[int(len(times) * 0.9)] * 1000:.1f}")


if __name__ == "__main__":
    main()
