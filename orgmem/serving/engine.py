"""The generation engine: one thread that decodes every active request in one batched forward.

Why one thread: decoding on the shared base is bounded by reading its weights once per step, so
16 requests decoded together cost little more than one. Requests of *different* orgs share the
batch; the ``MemoryRouter`` applies each row's own memory. A request holds a reference to the
``RowMemory`` it was admitted with, so a pin or rollback never changes a reply already running.

Loop: admit waiting requests (one padded prefill forward, bounded by ``prefill_tokens``), then one
decode step for all active rows, then drop finished or cancelled rows. A request with ``n`` choices
is prefilled once; its KV rows are copied to ``n`` batch rows, each sampling on its own (its own
seed, penalties, logprobs), and every event names its ``choice``. Events go back to the
caller through ``GenerationRequest.on_event`` from this thread (the API turns them into SSE).
A row whose wall-clock time since admission passes ``max_generation_s`` ends after that forward
with what it has ("length"), each row at its own deadline while the others go on, so one long
reply cannot hold a batch slot indefinitely.

Reading order: events → ``GenerationRequest`` → ``_Row`` → ``GenerationEngine``.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor
from transformers import DynamicCache

from orgmem.errors import OrgmemError
from orgmem.memory.rows import RowMemory
from orgmem.models.layers import model_device
from orgmem.models.tokens import eos_token_ids, pad_token_id
from orgmem.serving.constraint import TokenConstraint
from orgmem.serving.kvcache import BatchCache, filled_kv
from orgmem.serving.logprobs import TokenTexts
from orgmem.serving.routing import MemoryRouter
from orgmem.serving.sampling import (
    Sampler,
    SamplingParams,
    TokenLogprob,
    choice_seed,
    process_rows,
    prompt_logprobs,
    sample_rows,
    token_logprobs,
)
from orgmem.serving.textstream import TextStream

logger = logging.getLogger(__name__)


class EngineOverloadedError(OrgmemError):
    """Too many requests are waiting; the client should retry later."""


@dataclass(frozen=True)
class TextDelta:
    text: str
    choice: int = 0
    logprobs: tuple[TokenLogprob, ...] = ()  # the tokens since the last delta (when logprobs are asked)


@dataclass(frozen=True)
class PromptScored:
    """The prompt's token logprobs (first None), once per choice right after prefill, when asked."""

    logprobs: tuple[TokenLogprob | None, ...]
    choice: int = 0


@dataclass(frozen=True)
class Finished:
    reason: str  # "stop" (end of turn or stop sequence) | "length" | "cancelled"
    prompt_tokens: int
    completion_tokens: int
    text: str
    first_token_s: float | None  # seconds from submit to the first token
    choice: int = 0
    logprobs: tuple[TokenLogprob, ...] | None = None  # every generated token's, when asked
    prompt_logprobs: tuple[TokenLogprob | None, ...] | None = None


@dataclass(frozen=True)
class Failed:
    error: BaseException


Event = TextDelta | PromptScored | Finished | Failed


@dataclass
class GenerationRequest:
    """One completion to run; ``on_event`` is called from the engine thread."""

    prompt_ids: list[int]
    params: SamplingParams
    memory: RowMemory | None
    on_event: Callable[[Event], None]
    request_id: str = ""
    labels: dict[str, str] = field(default_factory=dict)  # org / checkpoint, for logs
    cancelled: threading.Event = field(default_factory=threading.Event)
    constraint: TokenConstraint | None = None  # a grammar the reply must follow (structured output)
    submitted_at: float = field(default_factory=time.perf_counter)
    n: int = 1  # choices sampled from this prompt (one prefill; its KV copied to n rows)
    constraints: list[TokenConstraint] = field(default_factory=list)  # with n > 1: one per choice

    def cancel(self) -> None:
        self.cancelled.set()

    def constraint_for(self, choice: int) -> TokenConstraint | None:
        """The grammar of choice ``choice``: each choice walks its own (``constraints``)."""
        return self.constraints[choice] if self.constraints else self.constraint


class _Row:
    """Engine-side state of one admitted request."""

    def __init__(self, req: GenerationRequest, tokenizer, device: torch.device, *,
                 deadline: float = math.inf, choice: int = 0, vocab: int = 0) -> None:
        self.req = req
        self.choice = choice
        self.deadline = deadline  # engine clock time at which the reply is cut ("length")
        seed = None if req.params.seed is None else choice_seed(req.params.seed, choice)
        self.sampler = Sampler(req.params, device, seed=seed, prompt_ids=req.prompt_ids, vocab=vocab)
        self.constraint = req.constraint_for(choice)
        self.stream = TextStream(tokenizer, req.params.stop)
        self.generated = 0
        self.last_token = -1
        self.first_token_s: float | None = None
        self.finish_reason: str | None = None
        self.logprobs: list[TokenLogprob] | None = [] if req.params.logprobs is not None else None
        self._unsent = 0  # logprobs not yet sent with a delta
        self.prompt_logprobs: tuple[TokenLogprob | None, ...] | None = None

    def emit(self, event: Event) -> None:
        try:
            self.req.on_event(event)
        except Exception:  # a broken consumer must not take the engine down
            logger.exception("event consumer failed", extra={"request": self.req.request_id})

    def _delta(self, text: str) -> TextDelta:
        """A delta carrying the logprobs of the tokens accepted since the last one."""
        if self.logprobs is None:
            return TextDelta(text, self.choice)
        unsent, self._unsent = tuple(self.logprobs[self._unsent:]), len(self.logprobs)
        return TextDelta(text, self.choice, unsent)

    def accept(self, token: int, stop_ids: frozenset[int], logprob: TokenLogprob | None = None) -> None:
        """Record the sampled token; sets ``finish_reason`` when the request is complete."""
        if self.first_token_s is None:
            self.first_token_s = time.perf_counter() - self.req.submitted_at
        self.last_token = token
        constraint = self.constraint
        if constraint is not None:
            constraint.advance(token)
        if token in stop_ids:
            self.finish_reason = "stop"
            return
        self.generated += 1
        self.sampler.observe(token)
        if self.logprobs is not None and logprob is not None:
            self.logprobs.append(logprob)
        text = self.stream.push(token)
        if text:
            self.emit(self._delta(text))
        if self.stream.stopped or (constraint is not None and constraint.finished):
            self.finish_reason = "stop"
        elif self.generated >= self.req.params.max_tokens:
            self.finish_reason = "length"

    def finish(self, reason: str | None = None) -> None:
        reason = reason or self.finish_reason or "stop"
        tail = self.stream.finish() if reason != "cancelled" else ""
        if tail or (self.logprobs is not None and self._unsent < len(self.logprobs)):
            self.emit(self._delta(tail))
        self.emit(Finished(reason, len(self.req.prompt_ids), self.generated, self.stream.text,
                           self.first_token_s, self.choice,
                           None if self.logprobs is None else tuple(self.logprobs), self.prompt_logprobs))


@dataclass
class EngineStats:
    """Counters the metrics endpoint and the benchmark read."""

    steps: int = 0
    prefills: int = 0
    tokens: int = 0
    max_batch_seen: int = 0


class GenerationEngine:
    """Batched, multi-org decoding on one frozen base model."""

    def __init__(self, base, *, max_batch: int = 16, prefill_tokens: int = 1024, max_queue: int = 256,
                 on_step: Callable[[int, float], None] | None = None, max_generation_s: float | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        """``max_generation_s``: wall-clock cap per request from its admission (None: no cap);
        ``clock``: the time source of that cap (tests inject one)."""
        self.base = base
        self.model = base.model
        self.tokenizer = base.tokenizer
        self.device = model_device(self.model)
        self.max_batch = max_batch
        self.prefill_tokens = prefill_tokens
        self.max_queue = max_queue
        self.on_step = on_step
        self.max_generation_s = max_generation_s
        self.clock = clock
        self.threads = torch.get_num_threads()  # the decode loop's own count (see serving/threads.py)
        self.router = MemoryRouter(self.model)
        self.stop_ids = frozenset(eos_token_ids(base.tokenizer, base.model))  # end-of-turn ids
        self.pad_id = pad_token_id(self.tokenizer)
        self.vocab = int(self.model.config.vocab_size)  # logits' width (penalty counts)
        self.stats = EngineStats()
        self._token_texts: TokenTexts | None = None
        self._inbox: queue.Queue[GenerationRequest | None] = queue.Queue()
        self._waiting: deque[GenerationRequest] = deque()
        self._rows: list[_Row] = []
        self._cache = BatchCache(base.num_layers, self.device)
        self._thread: threading.Thread | None = None
        self._running = False
        self._should_stop: Callable[[], bool] = lambda: False
        self._exited = threading.Event()
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> GenerationEngine:
        """Decode on a background thread (tests, benchmarks, embedding)."""
        if self._thread is None:
            self._running = True
            self._thread = threading.Thread(target=self._loop, name="orgmem-engine", daemon=True)
            self._thread.start()
        return self

    def run_here(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Decode on the calling thread until ``stop()`` or ``should_stop()`` (checked every step).

        Why: on CPU, torch's OpenMP kernels ran 1.4-1.7x slower on a secondary thread than on the
        process's main thread here (bf16 decode step 50-70 ms vs 36-42 ms): the main thread's
        OpenMP pool from loading the base put the process over one OpenMP thread per CPU (see
        ``orgmem.serving.threads``). So ``orgmem serve`` decodes on the main thread and runs the
        HTTP server on another.
        """
        if self._thread is not None:
            raise OrgmemError("the generation engine is already running")
        self._running = True
        self._thread = threading.current_thread()
        self._should_stop = should_stop
        try:
            self._loop()
        finally:
            self._thread = None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread; requests still queued or running are finished as cancelled."""
        self._running = False
        self._closed = True
        self._inbox.put(None)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._exited.wait(timeout)  # the loop's own thread, or the caller of ``run_here``
        self._thread = None
        self.router.remove_hooks()

    @property
    def token_texts(self) -> TokenTexts:
        """Token id -> (text, bytes) of this base's tokenizer, for logprobs (built on first use)."""
        if self._token_texts is None:
            self._token_texts = TokenTexts(self.tokenizer)
        return self._token_texts

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def active(self) -> int:
        return len(self._rows)

    @property
    def waiting(self) -> int:
        return len(self._waiting) + self._inbox.qsize()

    def submit(self, req: GenerationRequest) -> None:
        """Queue a request (before ``start`` too: it is taken by the first engine step)."""
        if self._closed:
            raise OrgmemError("the generation engine is stopped")
        if not 1 <= req.n <= self.max_batch:
            raise OrgmemError(f"n must be between 1 and the batch size ({self.max_batch}), got {req.n}")
        if req.constraints and len(req.constraints) != req.n:
            raise OrgmemError(f"{len(req.constraints)} constraints given for n={req.n} choices")
        if req.n > 1 and req.constraint is not None and not req.constraints:
            raise OrgmemError("a constrained request with n > 1 needs one constraint per choice "
                              "(constraints)")
        if self.waiting >= self.max_queue:
            raise EngineOverloadedError(
                f"{self.waiting} requests are waiting (limit {self.max_queue}); retry later")
        self._inbox.put(req)

    # -- the loop ----------------------------------------------------------------------------------
    def _loop(self) -> None:
        self._exited.clear()
        torch.set_num_threads(self.threads)  # not the 1 a memory-loading thread may have left as default
        try:
            with torch.inference_mode():
                while self._running and not self._should_stop():
                    self._drain_inbox(block=not self._rows and not self._waiting)
                    if not self._running:
                        break
                    try:
                        self._admit()
                        if self._rows:
                            self._decode_step()
                    except Exception as exc:  # keep serving: fail what was in flight, start clean
                        logger.exception("engine step failed; failing active requests")
                        self._fail_all(exc)
        finally:  # also on Ctrl-C in ``run_here``: every waiting or running request ends, cancelled
            try:
                self._drain_inbox(block=False)
                self._fail_all(None)
            finally:
                self._exited.set()

    def _drain_inbox(self, block: bool) -> None:
        try:
            item = self._inbox.get(timeout=0.5) if block else self._inbox.get_nowait()
        except queue.Empty:
            return
        while item is not None:
            self._waiting.append(item)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return

    def _rows_of(self, req: GenerationRequest, deadline: float = math.inf) -> list[_Row]:
        """One row per choice of ``req``."""
        return [_Row(req, self.tokenizer, self.device, deadline=deadline, choice=j, vocab=self.vocab)
                for j in range(req.n)]

    def _fail_all(self, exc: BaseException | None) -> None:
        pending = [row for r in self._waiting for row in self._rows_of(r)] + self._rows
        self._waiting.clear()
        self._rows = []
        self._cache = BatchCache(self.base.num_layers, self.device)
        for row in pending:
            if exc is not None:
                row.emit(Failed(exc))
            else:
                row.finish("cancelled")

    # -- admission (prefill) -----------------------------------------------------------------------
    def _take_admissible(self) -> list[GenerationRequest]:
        """FIFO requests whose choices fit in the batch and that fit the prefill token budget (at least
        one). A request scoring its prompt (prompt logprobs: every position's logits) is prefilled alone."""
        taken: list[GenerationRequest] = []
        longest, rows = 0, len(self._rows)
        while self._waiting and rows + self._waiting[0].n <= self.max_batch:
            req = self._waiting[0]
            if req.cancelled.is_set():
                self._waiting.popleft()
                for row in self._rows_of(req):
                    row.finish("cancelled")
                continue
            longest_if = max(longest, len(req.prompt_ids))
            scores = req.params.prompt_logprobs is not None
            if taken and (longest_if * (len(taken) + 1) > self.prefill_tokens or scores
                          or taken[0].params.prompt_logprobs is not None):
                break
            taken.append(self._waiting.popleft())
            longest, rows = longest_if, rows + req.n
        return taken

    def _admit(self) -> None:
        taken = self._take_admissible()
        if not taken:
            return
        deadline = self.clock() + self.max_generation_s if self.max_generation_s else math.inf
        rows = [row for req in taken for row in self._rows_of(req, deadline)]
        try:
            self._prefill(taken, rows)
        except Exception as exc:  # only these requests fail; the running batch is untouched
            logger.exception("prefill failed", extra={"requests": [r.req.request_id for r in rows]})
            for row in rows:
                row.emit(Failed(exc))

    def _prefill(self, taken: list[GenerationRequest], rows: list[_Row]) -> None:
        """One forward over the ``taken`` prompts; ``rows`` (their choices, in order) sample their
        first token from their prompt's logits and get a copy of its KV rows."""
        for req in taken:
            if req.memory is not None:
                self.router.ensure_hooks(req.memory.paths)
        ids, mask = self._left_padded([req.prompt_ids for req in taken])
        scored = taken[0].params.prompt_logprobs  # then it is alone (``_take_admissible``)
        cache = DynamicCache()
        t0 = time.perf_counter()
        with self.router.route([req.memory for req in taken]):
            out = self.model(input_ids=ids, attention_mask=mask,
                             position_ids=(mask.cumsum(1) - 1).clamp_min(0),
                             cache=cache, use_cache=True, logits_to_keep=0 if scored is not None else 1)
        self.stats.prefills += 1
        if scored is not None:
            self._score_prompt(rows, out.logits[0], scored)
        position = {id(req): i for i, req in enumerate(taken)}
        source = [position[id(r.req)] for r in rows]  # the prompt row each choice copies
        last = out.logits[:, -1]
        if len(rows) != len(taken):
            last = last.index_select(0, torch.tensor(source, dtype=torch.long, device=last.device))
        self._after_forward(rows, last, time.perf_counter() - t0)
        keep = [i for i, r in enumerate(rows) if r.finish_reason is None and not r.req.cancelled.is_set()]
        for i, r in enumerate(rows):
            if i not in keep:
                r.finish("cancelled" if r.req.cancelled.is_set() else None)
        if keep:
            index = torch.tensor([source[i] for i in keep], dtype=torch.long, device=self.device)
            kv = [(keys.index_select(0, index), values.index_select(0, index))
                  for keys, values in map(filled_kv, cache.layers)]
            self._cache.add_rows(kv, mask.index_select(0, index))
            self._rows.extend(rows[i] for i in keep)

    @staticmethod
    def _score_prompt(rows: list[_Row], logits: Tensor, k: int) -> None:
        """The prompt's logprobs from every position's logits of its (unpadded, alone) prefill row."""
        entries = prompt_logprobs(logits, rows[0].req.prompt_ids, k)
        for row in rows:
            row.prompt_logprobs = entries
            row.emit(PromptScored(entries, row.choice))

    def _left_padded(self, prompts: list[list[int]]) -> tuple[Tensor, Tensor]:
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[i, width - len(p):] = 1
        return ids.to(self.device), mask.to(self.device)

    # -- decoding ----------------------------------------------------------------------------------
    def _decode_step(self) -> None:
        rows = self._rows
        ids = torch.tensor([[r.last_token] for r in rows], dtype=torch.long, device=self.device)
        positions = self._cache.positions()
        mask = self._cache.extend_mask()
        t0 = time.perf_counter()
        with self.router.route([r.req.memory for r in rows]):
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=self._cache,
                             use_cache=True, logits_to_keep=1)
        self.stats.steps += 1
        self._after_forward(rows, out.logits[:, -1], time.perf_counter() - t0)
        keep = []
        for i, r in enumerate(rows):
            if r.req.cancelled.is_set():
                r.finish("cancelled")
            elif r.finish_reason is not None:
                r.finish()
            else:
                keep.append(i)
        if len(keep) < len(rows):
            self._cache.keep_rows(keep)
            self._rows = [rows[i] for i in keep]

    def _after_forward(self, rows: list[_Row], logits: Tensor, seconds: float) -> None:
        raw = logits  # logprobs are the model's own (before bias, penalties, masks, temperature)
        samplers = [r.sampler for r in rows]
        logits = self._suppress_early_stop(rows, logits)
        logits = self._constrain(rows, logits)
        logits = process_rows(logits, samplers)
        tokens = sample_rows(logits, samplers)
        logprobs = self._logprobs(rows, raw, tokens)
        now = self.clock() if self.max_generation_s else 0.0
        for row, token, logprob in zip(rows, tokens, logprobs, strict=True):
            row.accept(token, self.stop_ids, logprob)
            if row.finish_reason is None and now >= row.deadline:
                row.finish_reason = "length"  # the time cap: the reply so far, as at max_tokens
                logger.info("generation time cap reached", extra={
                    "request": row.req.request_id, "completion_tokens": row.generated, **row.req.labels})
        self.stats.tokens += len(rows)
        self.stats.max_batch_seen = max(self.stats.max_batch_seen, len(rows))
        if self.on_step is not None:
            self.on_step(len(rows), seconds)

    def _suppress_early_stop(self, rows: list[_Row], logits: Tensor) -> Tensor:
        """Rows below their ``min_tokens`` may not end the turn yet."""
        early = [i for i, r in enumerate(rows) if r.generated < r.req.params.min_tokens]
        if not early or not self.stop_ids:
            return logits
        logits = logits.clone()
        rows_index = torch.tensor(early, device=logits.device)[:, None]
        logits[rows_index, torch.tensor(sorted(self.stop_ids), device=logits.device)] = float("-inf")
        return logits

    @staticmethod
    def _logprobs(rows: list[_Row], raw: Tensor, tokens: list[int]) -> list[TokenLogprob | None]:
        """The sampled token's raw logprob (and top alternatives) for the rows that ask; None elsewhere."""
        asking = [i for i, r in enumerate(rows) if r.logprobs is not None]
        out: list[TokenLogprob | None] = [None] * len(rows)
        if asking:
            index = torch.tensor(asking, dtype=torch.long, device=raw.device)
            entries = token_logprobs(raw.index_select(0, index), [tokens[i] for i in asking],
                                     [rows[i].req.params.logprobs or 0 for i in asking])
            for i, entry in zip(asking, entries, strict=True):
                out[i] = entry
        return out

    @staticmethod
    def _constrain(rows: list[_Row], logits: Tensor) -> Tensor:
        """Rows with a grammar may take only the tokens it allows next."""
        masks: list[tuple[int, Tensor]] = []
        for i, row in enumerate(rows):
            allowed = row.constraint.allowed(logits.shape[-1]) if row.constraint is not None else None
            if allowed is not None:
                masks.append((i, allowed))
        if not masks:
            return logits
        logits = logits.clone()
        for i, allowed in masks:
            logits[i].masked_fill_(~allowed.to(logits.device), float("-inf"))
        return logits
