"""Between an HTTP request and the engine thread: prompt encoding and an async event stream.

The engine calls ``on_event`` from its own thread; ``AsyncGeneration`` hops each event onto the
request's event loop, so a route can ``async for event in gen.events()``. Leaving that loop
early (client disconnected, error) cancels the request, and the engine drops its row. ``on_end``
(the key's concurrency slot) is called when the generation ends: its last event from the engine,
or the consumer leaving, whichever comes first (a stream never iterated still ends in the engine).
"""

from __future__ import annotations

import asyncio
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


def encode_prompt(tokenizer, prompt: str | list[str] | list[int]) -> list[int]:
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


def check_length(base, prompt_ids: list[int], params: SamplingParams) -> None:
    """Refuse prompts the base cannot hold together with the reply (OpenAI's context_length_exceeded)."""
    limit = context_tokens(base)
    if not prompt_ids:
        raise ApiError(400, "the prompt is empty", param="prompt")
    if limit and len(prompt_ids) + params.max_tokens > limit:
        raise ApiError(400, f"prompt ({len(prompt_ids)} tokens) + max_tokens ({params.max_tokens}) exceeds "
                       f"the base model's context of {limit} tokens", param="messages",
                       code="context_length_exceeded")


class AsyncGeneration:
    """One request running in the engine, observed from asyncio."""

    def __init__(self, engine: GenerationEngine, resolved: ResolvedModel, memory: RowMemory | None,
                 prompt_ids: list[int], params: SamplingParams, request_id: str) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.started = time.perf_counter()
        self.request = GenerationRequest(prompt_ids=prompt_ids, params=params, memory=memory,
                                         on_event=self._from_engine, request_id=request_id,
                                         labels={"org": resolved.org, "checkpoint": resolved.label})
        self.engine = engine
        self.finished: Finished | None = None
        self.on_end: Callable[[], None] | None = None  # called at least once when it ends; idempotent

    def _from_engine(self, event: Event) -> None:
        if isinstance(event, Finished | Failed):
            self._end()
        self.loop.call_soon_threadsafe(self.queue.put_nowait, event)

    def _end(self) -> None:
        if self.on_end is not None:
            self.on_end()

    def start(self) -> AsyncGeneration:
        self.engine.submit(self.request)
        return self

    async def events(self) -> AsyncIterator[Event]:
        """Events until ``Finished`` (yielded) or ``Failed`` (raised); cancels the request if left early."""
        try:
            while True:
                event = await self.queue.get()
                if isinstance(event, Failed):
                    raise event.error
                yield event
                if isinstance(event, Finished):
                    self.finished = event
                    return
        finally:
            if self.finished is None:
                self.request.cancel()
            self._end()

    async def result(self) -> Finished:
        async for _ in self.events():
            pass
        if self.finished is None:
            raise RuntimeError("the generation's events ended without a Finished event")
        return self.finished
