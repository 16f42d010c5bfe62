"""Ingestion throughput on a generated repository (default 10,000 files): documents/s and MB/s.

Measures, on an embedded SQLite database under a temporary ORGMEM_HOME:
  connector  - the git connector alone reading the tree (no governance, no database);
  first_sync - full sync_source: read + governance + chunking (base tokenizer) + storing pending chunks;
  resync     - the same source again with nothing changed (must store nothing);
  incremental- 1% of the files edited in a new commit.
Writes benchmarks/results/ingest.json (the numbers docs/benchmarks.md quotes).

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ingest.py [--files N] [--tokenizer NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = (
    "ledger invoice settle gateway heron kestrel deploy cache queue retry shard tenant audit export "
    "report customer refund payment schedule window region cluster replica token session"
).split()
FAKE_KEY = "AKIAQ3EGRTYU7XNPLM2Z"


def _sentence(rng: random.Random, n: int = 12) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def _python(rng: random.Random, i: int) -> str:
    funcs = []
    for j in range(rng.randint(4, 12)):
        funcs.append(
            f"def {rng.choice(WORDS)}_{j}(value, retries={rng.randint(1, 9)}):\n"
            f'    """{_sentence(rng)}"""\n'
            f"    total = value * {rng.randint(2, 99)}\n"
            f"    for attempt in range(retries):\n"
            f"        total += attempt  # {_sentence(rng, 6)}\n"
            f"    return total\n"
        )
    head = f'"""Module {i}: {_sentence(rng)}"""\n\nimport os\n\n'
    if i % 100 == 7:
        head += f'AWS_ACCESS_KEY_ID = "{FAKE_KEY}"\n\n'
    return head + "\n\n".join(funcs)


def _markdown(rng: random.Random, i: int) -> str:
    parts = [f"# Runbook {i}\n"]
    for s in range(rng.randint(3, 8)):
        parts.append(f"## Step {s}\n\n" + " ".join(_sentence(rng) for _ in range(rng.randint(2, 6))) + "\n")
    return "\n".join(parts)


def _javascript(rng: random.Random, i: int) -> str:
    return "\n".join(
        f"export function {rng.choice(WORDS)}{j}(x) {{\n  // {_sentence(rng, 8)}\n"
        f"  return x * {rng.randint(2, 50)};\n}}\n"
        for j in range(rng.randint(5, 15))
    )


def generate_repo(root: Path, n_files: int, seed: int = 0) -> Path:
    """A git repo with ``n_files`` text files (py/md/js/yaml) plus vendored and binary noise."""
    rng = random.Random(seed)
    repo = root / "repo"
    repo.mkdir(parents=True)
    makers = [(".py", _python, 0.6), (".md", _markdown, 0.25), (".js", _javascript, 0.15)]
    for i in range(n_files):
        ext, make, _ = rng.choices(makers, weights=[w for *_, w in makers])[0]
        path = repo / f"pkg{i % 50:02d}" / f"mod{i // 50:03d}" / f"file{i}{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make(rng, i))
    for i in range(100):
        (repo / "node_modules" / f"dep{i}").mkdir(parents=True, exist_ok=True)
        (repo / "node_modules" / f"dep{i}" / "index.js").write_text("module.exports = 1;\n")
    for i in range(50):
        (repo / "assets").mkdir(exist_ok=True)
        (repo / "assets" / f"img{i}.png").write_bytes(
            b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(2000))
        )
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@x",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@x",
    }
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "generated"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env)
    return repo


def edit_some(repo: Path, fraction: float, seed: int = 1) -> int:
    rng = random.Random(seed)
    files = sorted(p for p in repo.rglob("file*") if p.is_file())
    chosen = rng.sample(files, max(1, int(len(files) * fraction)))
    for path in chosen:
        path.write_text(path.read_text() + f"\n# edited: {_sentence(rng)}\n")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@x",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@x",
    }
    subprocess.run(["git", "-C", str(repo), "commit", "-qam", "edit"], check=True, env=env)
    return len(chosen)


def _rate(docs: int, nbytes: int, seconds: float) -> dict[str, float]:
    return {
        "seconds": round(seconds, 2),
        "documents": docs,
        "docs_per_s": round(docs / seconds, 1),
        "mb_per_s": round(nbytes / 1e6 / seconds, 2),
    }


def run(n_files: int, tokenizer: str, workdir: Path) -> dict:
    from orgmem.config import Settings

    os.environ.setdefault("ORGMEM_MODELS_DIR", str(Settings().models_dir))  # converted models stay shared
    os.environ["ORGMEM_HOME"] = str(workdir / "home")
    os.environ["ORGMEM_BASE_MODEL"] = tokenizer
    from orgmem.config import get_settings

    get_settings.cache_clear()
    from connectors.registry import get_connector, parse_config
    from orgmem.db.migrate import upgrade
    from orgmem.db.session import session_factory
    from orgmem.ingest import add_source, default_token_counter, sync_source
    from orgmem.lineage import create_org

    t0 = time.perf_counter()
    repo = generate_repo(workdir, n_files)
    gen_s = time.perf_counter() - t0
    nbytes = sum(p.stat().st_size for p in repo.rglob("file*"))

    get_connector("git")  # import the git connector before timing
    t0 = time.perf_counter()
    items = list(get_connector("git").fetch(parse_config("git", {"path": str(repo)}), None))
    connector = _rate(len(items), nbytes, time.perf_counter() - t0)
    del items

    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    session = session_factory(settings.database_url, write=True)()
    org = create_org(session, "bench")
    source = add_source(session, org, "git", "repo", {"path": str(repo)})
    session.commit()
    t0 = time.perf_counter()
    count_tokens = default_token_counter()
    tok_load_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    first = sync_source(session, source, progress=False, count_tokens=count_tokens)
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    resync = sync_source(session, source, progress=False, count_tokens=count_tokens)
    resync_s = time.perf_counter() - t0
    edited = edit_some(repo, 0.01)
    t0 = time.perf_counter()
    incr = sync_source(session, source, progress=False, count_tokens=count_tokens)
    incr_s = time.perf_counter() - t0
    session.close()
    assert first.ok and resync.ok and incr.ok, (first.error, resync.error, incr.error)
    assert resync.new_versions == 0 and resync.chunks_added == 0
    return {
        "tokenizer": tokenizer,
        "files": n_files,
        "bytes": nbytes,
        "generate_repo_s": round(gen_s, 2),
        "tokenizer_load_s": round(tok_load_s, 2),
        "connector_only": connector,
        "first_sync": {
            **_rate(first.new_versions, nbytes, first_s),
            "chunks": first.chunks_added,
            "redactions": first.redactions,
            "skipped": dict(first.skipped),
            "stage_seconds": dict(first.to_dict()["timings"]),
        },
        "resync_no_change": {"seconds": round(resync_s, 2), "new_versions": resync.new_versions},
        "incremental_1pct": {
            "files_edited": edited,
            "seconds": round(incr_s, 2),
            "new_versions": incr.new_versions,
            "chunks_added": incr.chunks_added,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument(
        "--tokenizer",
        default=None,
        help="base model whose tokenizer sizes chunks (default: ORGMEM_BASE_MODEL or smollm2-135m-instruct)",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ingest.json")
    args = parser.parse_args()
    tokenizer = args.tokenizer or os.environ.get("ORGMEM_BASE_MODEL") or "smollm2-135m-instruct"
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="orgmem-bench-ingest-") as tmp:
        result = run(args.files, tokenizer, Path(tmp))
    result["machine"] = {
        "load_avg_1m_before": round(load_before, 2),
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "database": "sqlite (embedded)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
