"""Deterministic multi-night generator of an invented company's sources, as orgmem's connectors see them.

Per night n (2026-01-01 + n days) it applies, in place under an output folder:

- ``repo/``: a git repository, one commit per night (fixed author and dates, so hashes are stable);
- ``docs/``: Markdown and HTML pages edited in place, deleted pages removed;
- ``slack/export.zip``: a cumulative Slack workspace export with threads, edits and deletions;
- ``feed/feed.xml``: an RSS 2.0 feed that grows every night;
- ``probes.jsonl`` (readable by ``orgmem.eval.probes.load_probes``) and ``manifest.json``.

    from benchmarks.org_generator import GeneratorConfig, OrgGenerator
    gen = OrgGenerator(GeneratorConfig(seed=0, nights=10, facts_per_night=30))
    for n in range(1, 11):
        gen.write_night(out, n)
    gen.probes(10), gen.retired(10), gen.org_name

CLI: ``python benchmarks/org_generator.py OUT --seed 0 --nights 10 --facts-per-night 30
--updates-per-night 6 --deletes-per-night 1``. The work is done in ``benchmarks/orggen/``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.orggen.generator import GeneratorConfig, NightSummary, OrgGenerator, night_sizes  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="output folder (fresh, or one this config already started)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nights", type=int, default=10)
    parser.add_argument("--facts-per-night", type=int, default=30)
    parser.add_argument("--updates-per-night", type=int, default=6)
    parser.add_argument("--deletes-per-night", type=int, default=1)
    parser.add_argument("--org-name", default=None)
    parser.add_argument(
        "--mix", default="35,35,20,10", help="code,docs,slack,news weights (default 35,35,20,10)"
    )
    args = parser.parse_args(argv)
    try:
        mix = tuple(float(x) for x in args.mix.split(","))
        cfg = GeneratorConfig(seed=args.seed, **night_sizes(args), org_name=args.org_name, source_mix=mix)
    except ValueError as exc:
        parser.error(str(exc))
    gen = OrgGenerator(cfg)
    args.out.mkdir(parents=True, exist_ok=True)
    for n in range(1, cfg.nights + 1):
        s = gen.write_night(args.out, n)
        print(
            f"night {n}: {len(s.new)} new, {len(s.updated)} updated, {len(s.deleted)} deleted "
            f"({len(s.retired)} facts retired), {s.files_written} files written, "
            f"{len(gen.probes(n))} probes",
            flush=True,
        )
    print(f"{gen.org_name}: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["GeneratorConfig", "NightSummary", "OrgGenerator", "main"]
