"""Between an HTTP request and the engine thread: prompt encoding and an async event stream.

The engine calls ``on_event`` from its own thread; ``AsyncGeneration`` hops each event onto the
request's event loop, so a route can ``async for event in gen.events()``. One ``AsyncGeneration``
may run several prompts (a completions list prompt), each with ``n`` choices: prompt ``i``'s
choice ``j`` is choice ``i * n + j`` of the whole, as OpenAI numbers them. Leaving that loop
early (client disconnected, error) cancels the request, and the engine drops its row. ``on_end``
(the key's concurrency slot) is called when the generation ends: its last event from the engine,
or the consumer leaving, whichever comes first (a stream never iterated still ends in the engine).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import AsyncIterator, Callable

from orgmem.errors import ApiError
from orgmem.memory.rows import RowMemory
from orgmem.models.tokens import encode_chat, has_chat_template
from orgmem.serving.engine import Event, Failed, Finished, GenerationEngine, GenerationRequest
from orgmem.serving.resolve import ResolvedModel
from orgmem.serving.sampling import SamplingParams


def encode_conversation(tokenizer, messages: list[dict[str, str]]) -> list[int]:
    """Token ids of the conversation through the base's chat template, ready for the reply.

    The server refuses chat on a base without a template rather than guess a framing (evaluation
    falls back to plain ChatML, ``orgmem.models.tokens.encode_chat``).
    """
    if not has_chat_template(tokenizer):
        raise ApiError(400, "this base model has no chat template; use /v1/completions",
                       code="no_chat_template")
    return encode_chat(tokenizer, messages)


Prompt = str | list[str] | list[int] | list[list[int]]


def encode_prompt(tokenizer, prompt: str | list[str] | list[int]) -> list[int]:
    """One prompt's ids (a one-element list prompt is that prompt)."""
    if isinstance(prompt, list) and not prompt:  # [] is no prompt (found by the fuzzer: it was a 500)
        raise ApiError(400, "the prompt is empty", param="prompt")
    if isinstance(prompt, list) and isinstance(prompt[0], int):
        vocab = len(tokenizer)
        bad = [t for t in prompt if not 0 <= int(t) < vocab]
        if bad:
            raise ApiError(400, f"prompt token ids {bad[:5]} are outside the vocabulary (0..{vocab - 1})",
                           param="prompt")
        return [int(t) for t in prompt]
    text = prompt[0] if isinstance(prompt, list) else prompt
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return ids


def split_prompts(prompt: Prompt) -> list[str | list[int]]:
    """OpenAI's prompt forms as a list of prompts: a string, token ids, or a list of either."""
    if isinstance(prompt, str):
        return [prompt]
    if not prompt:
        raise ApiError(400, "the prompt is empty", param="prompt")
    if all(isinstance(p, int) for p in prompt):
        return [list(prompt)]  # type: ignore[arg-type]
    return list(prompt)  # type: ignore[arg-type]


def encode_prompts(tokenizer, prompts: list[str | list[int]]) -> list[list[int]]:
    out = []
    for p in prompts:
        ids = encode_prompt(tokenizer, p if isinstance(p, str) else list(p))
        if not ids:
            raise ApiError(400, "a prompt is empty", param="prompt")
        out.append(ids)
    return out


FIM_TOKENS = (("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
              ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"))


def fim_ids(tokenizer) -> tuple[int, int, int] | None:
    """The base's fill-in-the-middle tokens (StarCoder's or Qwen's spelling), if its vocabulary has them."""
    vocab = tokenizer.get_vocab()
    for names in FIM_TOKENS:
        if all(name in vocab for name in names):
            prefix, suffix, middle = (int(vocab[name]) for name in names)
            return prefix, suffix, middle
    return None


def encode_fim(tokenizer, prompt: str, suffix: str) -> list[int]:
    """``suffix``: the prefix-suffix-middle prompt of a base trained for it; 400 naming ``suffix`` on
    a base without fill-in-the-middle tokens (most chat bases: no template to put a suffix in)."""
    ids = fim_ids(tokenizer)
    if ids is None:
        raise ApiError(400, "suffix needs a base trained for fill-in-the-middle; this base's tokenizer has "
                       "no <fim_prefix>/<fim_suffix>/<fim_middle> tokens", param="suffix",
                       code="unsupported_parameter")
    prefix_id, suffix_id, middle_id = ids

    def encode(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    return [prefix_id, *encode(prompt), suffix_id, *encode(suffix), middle_id]


PROMPT_CHARS_SETTING = "ORGMEM_SERVE_MAX_PROMPT_CHARS"
CHARS_PER_CONTEXT_TOKEN = 16  # ~4 characters per token of text, so about 4x what the context can hold
FALLBACK_CONTEXT = 8192  # a base whose config names no context


def context_tokens(base) -> int:
    return int(getattr(base.model.config, "max_position_embeddings", 0) or 0)


def prompt_chars_limit(base, configured: int | None) -> int:
    """``ORGMEM_SERVE_MAX_PROMPT_CHARS``, else 16 characters per token of the base's context."""
    return configured or CHARS_PER_CONTEXT_TOKEN * (context_tokens(base) or FALLBACK_CONTEXT)


def check_prompt_size(size: int, limit: int, param: str) -> None:
    """Refuse a prompt by its raw size, before tokenising: tokenising costs time (on the event loop)
    and memory in proportion to the text, and a prompt this far over the context would be refused
    after it anyway (issue 14: one 50 MB prompt stalled the server and kept 3 GB)."""
    if size > limit:
        raise ApiError(400, f"prompt of {size} characters is over this server's limit of {limit} characters "
                       f"({PROMPT_CHARS_SETTING}); it was not tokenised", param=param,
                       code="context_length_exceeded")


def check_length(base, prompt_ids: list[int], params: SamplingParams, param: str = "messages") -> None:
    """Refuse prompts the base cannot hold together with the reply (OpenAI's context_length_exceeded)."""
    limit = context_tokens(base)
    if not prompt_ids:
        raise ApiError(400, "the prompt is empty", param="prompt")
    if limit and len(prompt_ids) + params.max_tokens > limit:
        raise ApiError(400, f"prompt ({len(prompt_ids)} tokens) + max_tokens ({params.max_tokens}) exceeds "
                       f"the base model's context of {limit} tokens", param=param,
                       code="context_length_exceeded")


class AsyncGeneration:
    """One API request running in the engine (one engine request per prompt), observed from asyncio."""

    def __init__(self, engine: GenerationEngine, resolved: ResolvedModel, memory: RowMemory | None,
                 prompt_ids: list[int] | list[list[int]], params: SamplingParams, request_id: str,
                 n: int = 1) -> None:
        """``prompt_ids``: one prompt's ids, or a list of prompts; ``n`` choices each."""
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.started = time.perf_counter()
        prompts = prompt_ids if prompt_ids and isinstance(prompt_ids[0], list) else [prompt_ids]
        self.n = n
        self.requests = [GenerationRequest(prompt_ids=list(p), params=params, memory=memory,  # type: ignore[arg-type]
                                           on_event=self._from_engine_at(i * n), request_id=request_id, n=n,
                                           labels={"org": resolved.org, "checkpoint": resolved.label})
                         for i, p in enumerate(prompts)]
        self.choices = n * len(self.requests)
        self.engine = engine
        self.finished: Finished | None = None  # the last choice's (all have finished when it is set)
        self.results: list[Finished | None] = [None] * self.choices
        self.on_end: Callable[[], None] | None = None  # called at least once when it ends; idempotent
        self._engine_open = self.choices  # choices the engine has not finished yet
        self._lock = threading.Lock()

    @property
    def request(self) -> GenerationRequest:
        """The (first) engine request: its id, constraint and cancel flag."""
        return self.requests[0]

    def set_request_id(self, request_id: str) -> None:
        for req in self.requests:
            req.request_id = request_id

    def _from_engine_at(self, offset: int) -> Callable[[Event], None]:
        def on_event(event: Event) -> None:
            if not isinstance(event, Failed):
                event = dataclasses.replace(event, choice=offset + event.choice)
            self._from_engine(event)
        return on_event

    def _from_engine(self, event: Event) -> None:
        if isinstance(event, Failed):
            self._end()
        elif isinstance(event, Finished):
            with self._lock:
                self._engine_open -= 1
                ended = self._engine_open == 0
            if ended:
                self._end()
        self.loop.call_soon_threadsafe(self.queue.put_nowait, event)

    def _end(self) -> None:
        if self.on_end is not None:
            self.on_end()

    def start(self) -> AsyncGeneration:
        for i, req in enumerate(self.requests):
            try:
                self.engine.submit(req)
            except BaseException:
                for started in self.requests[:i]:
                    started.cancel()
                raise
        return self

    def cancel(self) -> None:
        for req in self.requests:
            req.cancel()

    def abandon(self) -> None:
        """The consumer left (a stream closed at any point, even before iterating ``events``):
        cancel what is still running and end (``on_end``); nothing once every choice has finished."""
        if self.finished is None:
            self.cancel()
            self._end()

    async def events(self) -> AsyncIterator[Event]:
        """Events until every choice's ``Finished`` (each yielded) or a ``Failed`` (raised); cancels
        the requests if left early."""
        open_choices = self.choices
        try:
            while open_choices:
                event = await self.queue.get()
                if isinstance(event, Failed):
                    raise event.error
                yield event
                if isinstance(event, Finished) and self.results[event.choice] is None:
                    self.results[event.choice] = event
                    open_choices -= 1
            self.finished = next(r for r in reversed(self.results) if r is not None)
        finally:
            if self.finished is None:
                self.cancel()
            self._end()

    async def result(self) -> Finished:
        """The first choice's ``Finished`` once every choice has finished (all in ``results``)."""
        async for _ in self.events():
            pass
        first = self.results[0]
        if self.finished is None or first is None:
            raise RuntimeError("the generation's events ended without a Finished event")
        return first

    async def all_results(self) -> list[Finished]:
        """Every choice's ``Finished``, by choice index."""
        await self.result()
        return [r for r in self.results if r is not None]

