"""benchmarks/serving.py's choices section on the tiny base: the json_schema row decodes under the
product's grammar, pairs each constrained reply with a plain one of the same length, and a
``--sections choices`` run merges into the results already there."""

from __future__ import annotations

import json
from types import SimpleNamespace

from benchmarks import serving
from orgmem.serving.engine import GenerationEngine


def test_json_schema_row_pairs_constrained_replies_with_plain_ones_of_the_same_length(tiny_base):
    engine = GenerationEngine(tiny_base, max_batch=4).start()
    try:
        row = serving.constrained_row(SimpleNamespace(engine=engine), None, 160, 3)
    finally:
        engine.stop()
    assert row["replies"] == 3 and len(row["samples"]) == len(row["plain_samples"]) == 3
    # the tiny base closes the bounded schema before 160 tokens with these seeds; every closed
    # reply is strict JSON valid against the schema (the grammar's guarantee)
    assert row["finish_reasons"] == ["stop"] * 3 and all(t < 160 for t in row["completion_tokens"])
    assert row["stopped"] == row["parsed"] == row["validated"] == 3
    assert row["plain_completion_tokens"] == row["completion_tokens"]
    assert row["mask_ms_per_token"] > 0 and row["ratio_paired_median"] > 0
    assert row["library"].startswith("xgrammar ")
    table = "\n".join(serving._choices_markdown({"choices": {
        "n1": {"aggregate_tokens_per_s": 1.0}, "n4": {"aggregate_tokens_per_s": 3.0}, "ratio_n4_to_n1": 3.0,
        "sampling": serving.CHOICE_SAMPLING, "json_schema": row}, "tokens_per_stream": 160}))
    assert "| json_schema constrained (xgrammar" in table
    assert '3/3 ended "stop" (3 parsed, 3 validated)' in table


def test_choices_section_run_keeps_the_other_sections_of_the_results(tmp_path):
    out = tmp_path / "serving.json"
    out.write_text(json.dumps({"swap": {"cold_load_ms_median": 1.0}, "choices": {"stale": True}}))
    serving.main(["--base", "tiny-random", "--sections", "choices", "--tokens", "6", "--repeats", "1",
                  "--out", str(out)])
    data = json.loads(out.read_text())
    assert data["swap"] == {"cold_load_ms_median": 1.0}
    choices = data["choices"]
    assert "stale" not in choices and choices["n4"]["aggregate_tokens_per_s"] > 0
    assert choices["json_schema"]["replies"] == 1 and choices["json_schema"]["completion_tokens"][0] <= 6
    assert choices["command"].endswith("--sections choices --tokens 6 --repeats 1 --out " + str(out))
    assert "json_schema constrained (xgrammar" in out.with_suffix(".md").read_text()
