"""Rebuild the knowledge benchmark's second corpus: a real package nobody here wrote (pybreaker).

Why: the Skerrow Air corpus was written by us, in the shapes our own rules expect; an org's real
repository is code, docstrings and a README written by someone else. The corpus is rebuilt from
the package installed in ``.venv`` (pinned by version; ``benchmarks/requirements-bench.txt`` pins
the wheel's sha256, which ``pip --require-hashes`` checks at install, and every installed file is
checked here against the wheel's RECORD), so nothing of it is copied into this repository. Only
the probes (``benchmarks/corpus_real_probes.jsonl``) are ours.

Layout written (what ``orgmem.eval.corpus.load_corpus`` reads; one night)::

    <out>/night1/repo/pybreaker/<module>.py   the package's source files
    <out>/night1/docs/README.rst              its long description (the dist's METADATA payload)
    <out>/probes.jsonl                        copied from corpus_real_probes.jsonl
    <out>/SOURCE.json                         package, version, wheel sha256, per-file sha256

    .venv/bin/pip install --no-deps --require-hashes -r benchmarks/requirements-bench.txt
    python benchmarks/real_corpus.py                     # -> benchmarks/corpus_real/ (git-ignored)
    python benchmarks/real_corpus.py --screen            # re-derive the probes from the candidates
    python benchmarks/knowledge.py --baselines-only --corpus benchmarks/corpus_real \
        --out benchmarks/results/real
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PACKAGE = "pybreaker"
VERSION = "1.4.1"
WHEEL = "pybreaker-1.4.1-py3-none-any.whl"
WHEEL_SHA256 = "b4dab4a05195b7f2a64a6c1a6c4ba7a96534ef56ea7210e6bcb59f28897160e0"
CANDIDATES = ROOT / "corpus_real_candidates.jsonl"  # every probe written; the screen keeps some
PROBES = ROOT / "corpus_real_probes.jsonl"  # the kept ones: the bare base misses them closed-book
SCREEN = ROOT / "results" / "real" / "screen.json"
DEFAULT_OUT = ROOT / "corpus_real"
INSTALL = "pip install --no-deps --require-hashes -r benchmarks/requirements-bench.txt"


def installed() -> metadata.Distribution:
    """The pinned distribution, or exit saying how to install it."""
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        raise SystemExit(f"{PACKAGE} is not installed: {INSTALL}") from None
    if dist.version != VERSION:
        raise SystemExit(f"{PACKAGE} {dist.version} is installed, the corpus is pinned to {VERSION}: "
                         f"{INSTALL}")
    return dist


def verified_sources(dist: metadata.Distribution) -> dict[str, bytes]:
    """The package's ``.py`` files, each checked against the sha256 its wheel's RECORD lists (an
    edited or foreign install would silently change the corpus otherwise)."""
    out = {}
    for f in dist.files or []:
        if f.suffix != ".py" or f.parts[0] != PACKAGE:
            continue
        data = f.locate().read_bytes()
        if f.hash is None or f.hash.mode != "sha256":
            raise SystemExit(f"{f}: no sha256 in the RECORD of {PACKAGE} {VERSION}")
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        if digest != f.hash.value:
            raise SystemExit(f"{f}: sha256 differs from the wheel's RECORD: reinstall ({INSTALL})")
        out[f.as_posix()] = data
    if not out:
        raise SystemExit(f"{PACKAGE} {VERSION} lists no source files")
    return out


def readme(dist: metadata.Distribution) -> str:
    """The long description (METADATA's body) under a header of its own metadata fields."""
    raw = dist.read_text("METADATA") or ""
    body = raw.split("\n\n", 1)[1] if "\n\n" in raw else ""
    meta = dist.metadata
    author = (meta.get("Author-email") or meta.get("Author") or "").split("<")[0].strip()
    head = [f"{meta['Name']} {meta['Version']}: {meta['Summary']}", f"Author: {author}"]
    head += [f"Project URL: {url}" for url in meta.get_all("Project-URL") or []]
    return "\n".join(head) + "\n\n" + body.strip() + "\n"


def build(out: Path = DEFAULT_OUT, probes: Path = PROBES) -> Path:
    """Write the corpus folder (replacing an old one) and check the probes agree with it."""
    from orgmem.eval.corpus import load_corpus

    dist = installed()
    sources = verified_sources(dist)
    if out.exists():
        shutil.rmtree(out)
    night = out / "night1"
    for rel, data in sources.items():
        path = night / "repo" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (night / "docs").mkdir(parents=True)
    (night / "docs" / "README.rst").write_text(readme(dist), encoding="utf-8")
    shutil.copyfile(probes, out / "probes.jsonl")
    (out / "SOURCE.json").write_text(json.dumps({
        "package": PACKAGE, "version": VERSION, "wheel": WHEEL, "wheel_sha256": WHEEL_SHA256,
        "files_sha256": {rel: hashlib.sha256(data).hexdigest() for rel, data in sources.items()},
        "probes": probes.name}, indent=2) + "\n")
    problems = load_corpus(out).check()
    if problems:
        raise SystemExit("probes and documents disagree:\n" + "\n".join(problems))
    return out


def screen(candidates: Path = CANDIDATES, kept: Path = PROBES, record: Path = SCREEN,
           base: str = "smollm2-135m-instruct", threads: int = 1) -> dict:
    """Keep the candidate probes the bare base does *not* answer closed-book (same prompt and answer
    check as the benchmark's question probes); write them to ``kept`` and what was dropped to
    ``record``. A probe the base answers unaided measures nothing about memory."""
    import torch

    from benchmarks.baselines import answer_all
    from orgmem.eval.evaluate import EvalConfig
    from orgmem.eval.probes import contains_answer, load_probes, save_probes
    from orgmem.models import load_base

    torch.set_num_threads(threads)
    probes = load_probes(candidates)
    model = load_base(base, device="cpu", dtype=torch.float32)
    replies = answer_all(model, [p.question for p in probes], EvalConfig().question_max_new_tokens, 16)
    hits = [contains_answer(r, p.accepted) for p, r in zip(probes, replies, strict=True)]
    save_probes([p for p, hit in zip(probes, hits, strict=True) if not hit], kept)
    result = {"base": base, "base_fingerprint": model.fingerprint, "candidates": len(probes),
              "dropped": sum(hits), "kept": len(probes) - sum(hits),
              "dropped_probes": [{"key": p.key, "question": p.question, "answer": p.answer, "reply": r}
                                 for p, r, hit in zip(probes, replies, hits, strict=True) if hit],
              "replies": {p.key: r for p, r in zip(probes, replies, strict=True)}}
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result


def count_tokens(out: Path, base: str = "smollm2-135m-instruct") -> dict[str, int]:
    """Tokens per document with the base's tokenizer (the corpus is meant to be ~8-20k tokens)."""
    from orgmem.models import load_base

    tok = load_base(base, device="cpu").tokenizer
    return {p.relative_to(out).as_posix(): len(tok(p.read_text(encoding="utf-8"))["input_ids"])
            for p in sorted((out / "night1").rglob("*")) if p.is_file()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--probes", type=Path, default=PROBES)
    ap.add_argument("--tokens", action="store_true",
                    help="also count each document's tokens (loads the base)")
    ap.add_argument("--screen", action="store_true",
                    help=f"first rewrite --probes from {CANDIDATES.name}, dropping what the base answers "
                    "closed-book")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    if a.screen:
        result = screen(kept=a.probes, threads=a.threads)
        print(f"screen: {result['candidates']} candidates, {result['dropped']} answered closed-book and "
              f"dropped, {result['kept']} kept in {a.probes}")
    out = build(a.out, a.probes)
    print(f"{PACKAGE} {VERSION} corpus written to {out}")
    if a.tokens:
        counts = count_tokens(out)
        print(json.dumps({**counts, "total": sum(counts.values())}, indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT.parent))
    raise SystemExit(main())
