"""The batched engine's per-row sampling: ``n`` choices from one prefill, penalties, bias and
logprobs, each row as if alone, against references (HF ``generate``, plain forwards)."""

from __future__ import annotations

import threading

import torch

from orgmem.serving.engine import (
    Failed,
    Finished,
    GenerationEngine,
    GenerationRequest,
    PromptScored,
    TextDelta,
)
from orgmem.serving.sampling import SamplingParams, choice_seed
from tests.serving.test_serving_engine import perturbed_memory, row_memory

PROMPT = [40, 41, 42, 43, 44]


class _Job:
    """One request's events, by choice."""

    def __init__(self, engine: GenerationEngine, prompt: list[int], memory=None, n: int = 1,
                 **params) -> None:
        self.done = threading.Event()
        self.ends: dict[int, Finished] = {}
        self.deltas: dict[int, list[TextDelta]] = {}
        self.scored: list[PromptScored] = []
        self.n = n
        params.setdefault("temperature", 0)
        params.setdefault("max_tokens", 8)
        self.req = GenerationRequest(prompt_ids=prompt, memory=memory, on_event=self._on, n=n,
                                     params=SamplingParams(**params))
        engine.submit(self.req)

    def _on(self, event) -> None:
        if isinstance(event, TextDelta):
            self.deltas.setdefault(event.choice, []).append(event)
        elif isinstance(event, PromptScored):
            self.scored.append(event)
        elif isinstance(event, Failed):
            raise AssertionError(event.error)
        elif isinstance(event, Finished):
            self.ends[event.choice] = event
            if len(self.ends) == self.n:
                self.done.set()

    def texts(self) -> list[str]:
        assert self.done.wait(30)
        return [self.ends[i].text for i in range(self.n)]


def _run(engine: GenerationEngine, jobs: list[_Job]) -> None:
    engine.start()
    try:
        for job in jobs:
            assert job.done.wait(30)
    finally:
        engine.stop()


def test_n_choices_share_one_prefill_and_each_equals_a_solo_run_with_its_seed(tiny_base):
    engine = GenerationEngine(tiny_base, max_batch=8)
    job = _Job(engine, PROMPT, n=4, temperature=1.0, seed=11, max_tokens=10)
    engine.start()
    try:
        assert job.done.wait(30)
        assert engine.stats.prefills == 1 and engine.stats.max_batch_seen == 4
        solo = [_Job(engine, PROMPT, temperature=1.0, seed=choice_seed(11, j), max_tokens=10)
                for j in range(4)]
        solo_texts = [s.texts()[0] for s in solo]
        again = _Job(engine, PROMPT, n=4, temperature=1.0, seed=11, max_tokens=10)
        assert again.texts() == job.texts()  # reproducible
    finally:
        engine.stop()
    assert job.texts() == solo_texts
    assert len(set(job.texts())) == 4, "a seeded request's choices differ"
    for j in range(4):
        assert "".join(d.text for d in job.deltas.get(j, [])) == job.ends[j].text
        assert job.ends[j].choice == j and job.ends[j].prompt_tokens == len(PROMPT)


def test_rows_with_different_parameters_and_memories_in_one_batch_each_behave_as_alone(tiny_base):
    memory = row_memory(tiny_base, perturbed_memory(tiny_base, "cms", seed=4)[0])
    specs = [
        dict(memory=memory, logit_bias=((65, 100.0),)),
        dict(memory=None, presence_penalty=2.0),
        dict(memory=memory),
        dict(memory=None, n=3, temperature=1.0, seed=5, top_k=3),
        dict(memory=memory, repetition_penalty=1.8, frequency_penalty=0.5),
        dict(memory=None, temperature=1.0, seed=9, min_p=0.3, logprobs=2),
    ]

    def jobs_on(engine: GenerationEngine) -> list[_Job]:
        return [_Job(engine, PROMPT, **spec) for spec in specs]

    engine = GenerationEngine(tiny_base, max_batch=16)
    batched = jobs_on(engine)  # submitted before start: one prefill, then every step decodes all 8 rows
    _run(engine, batched)
    assert engine.stats.prefills == 1 and engine.stats.max_batch_seen == 8
    solo = []
    for spec in specs:
        alone = GenerationEngine(tiny_base, max_batch=16)
        job = _Job(alone, PROMPT, **spec)
        _run(alone, [job])
        solo.append(job)
    for b, s in zip(batched, solo, strict=True):
        assert b.texts() == s.texts()
    forced = tiny_base.tokenizer.decode([65])
    assert batched[0].texts()[0] == forced * 8, "the bias forces its token on its row"
    assert forced * 8 not in batched[2].texts()[0], "the same org's unbiased row is not forced"
    for b, s in zip(batched[5].ends[0].logprobs, solo[5].ends[0].logprobs, strict=True):
        assert b.token == s.token and abs(b.logprob - s.logprob) < 1e-5  # batched matmuls round apart


def test_repetition_penalty_equals_hf_generate(tiny_base):
    engine = GenerationEngine(tiny_base)
    job = _Job(engine, PROMPT, repetition_penalty=4.0, max_tokens=12, min_tokens=12)
    plain = _Job(engine, PROMPT, max_tokens=12, min_tokens=12)
    _run(engine, [job, plain])
    with torch.inference_mode():
        out = tiny_base.model.generate(torch.tensor([PROMPT]), do_sample=False, max_new_tokens=12,
                                       min_new_tokens=12, repetition_penalty=4.0,
                                       pad_token_id=0)
    expected = out[0, len(PROMPT):].tolist()
    assert job.ends[0].text == tiny_base.tokenizer.decode(expected, skip_special_tokens=True)
    assert job.ends[0].text != plain.ends[0].text


def _greedy_by_hand(model, prompt: list[int], steps: int, presence: float, frequency: float) -> list[int]:
    """Full forwards, no cache: OpenAI's penalty formula over the generated tokens."""
    ids, out = list(prompt), []
    for _ in range(steps):
        with torch.inference_mode():
            logits = model(torch.tensor([ids])).logits[0, -1].float()
        logits = logits.clone()  # a normal tensor (an inference-mode one refuses in-place updates)
        for token in set(out):
            logits[token] -= presence + frequency * out.count(token)
        out.append(int(logits.argmax()))
        ids.append(out[-1])
    return out


def test_presence_and_frequency_penalties_equal_a_hand_loop(tiny_base):
    engine = GenerationEngine(tiny_base)
    jobs = [_Job(engine, PROMPT, max_tokens=15, min_tokens=15, presence_penalty=p, frequency_penalty=f,
                 logprobs=0) for p, f in ((0.3, 0.0), (0.0, 0.2), (2.0, 0.0))]
    _run(engine, jobs)
    for job, (p, f) in zip(jobs, ((0.3, 0.0), (0.0, 0.2), (2.0, 0.0)), strict=True):
        tokens = [e.token for e in job.ends[0].logprobs]
        assert tokens == _greedy_by_hand(tiny_base.model, PROMPT, 15, p, f)
    strong = [e.token for e in jobs[2].ends[0].logprobs]
    assert len(set(strong)) == 15, "a presence penalty of 2 outweighs this model's logit spread"


def test_logprobs_are_the_models_raw_ones_and_stream_with_their_deltas(tiny_base):
    engine = GenerationEngine(tiny_base)
    job = _Job(engine, PROMPT, max_tokens=6, min_tokens=6, logprobs=3, presence_penalty=1.0,
               logit_bias=((7, 5.0),))
    _run(engine, [job])
    entries = job.ends[0].logprobs
    tokens = [e.token for e in entries]
    with torch.inference_mode():
        logits = tiny_base.model(torch.tensor([PROMPT + tokens])).logits[0].float()
    logp = torch.log_softmax(logits[len(PROMPT) - 1:-1], -1)  # before bias and penalties
    for i, e in enumerate(entries):
        assert abs(e.logprob - float(logp[i, e.token])) < 1e-4
        assert [t for t, _ in e.top] == logp[i].topk(3).indices.tolist()
    streamed = [e for d in job.deltas[0] for e in d.logprobs]
    assert streamed == list(entries)


def test_prompt_logprobs_come_from_a_prefill_of_their_own(tiny_base):
    engine = GenerationEngine(tiny_base)
    others = [_Job(engine, [5, 6, 7]) for _ in range(2)]
    scored = _Job(engine, PROMPT, n=2, prompt_logprobs=1, max_tokens=3)
    _run(engine, [*others, scored])
    assert engine.stats.prefills == 2, "the scored prompt is prefilled apart from the others"
    with torch.inference_mode():
        logp = torch.log_softmax(tiny_base.model(torch.tensor([PROMPT])).logits[0].float(), -1)
    entries = scored.ends[0].prompt_logprobs
    assert entries[0] is None and len(entries) == len(PROMPT)
    for i, e in enumerate(entries[1:]):
        assert e.token == PROMPT[i + 1] and abs(e.logprob - float(logp[i, PROMPT[i + 1]])) < 1e-4
        assert e.top[0][0] == int(logp[i].argmax())
    assert [s.choice for s in scored.scored] == [0, 1] and scored.ends[1].prompt_logprobs == entries
