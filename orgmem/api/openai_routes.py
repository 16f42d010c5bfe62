"""``/v1``: the OpenAI-compatible routes (models, chat completions, text completions).

Per request: authenticate (dependency), resolve ``model`` to a checkpoint *now*, take the loaded
memory (cache or store), submit to the engine, answer as JSON or as server-sent events ending
with ``data: [DONE]``. A request's ``prompts x n`` choices each hand one ``CompletedTurn`` to the
turn listeners (``choice_index``) and take one of the key's in-flight slots (at most all of them,
so a large ``n`` runs alone rather than never). The checkpoint(s) that answered are in the
``X-Orgmem-Checkpoint`` header:
``ck_org``, or ``ck_org+eng:ck_grp`` when the key's group memories are stacked on the org's.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from orgmem.api.auth import generation_slot, get_state, require_key
from orgmem.api.errors import as_api_error, log_failure
from orgmem.api.openai_choices import ChatChoices, CompletionChoices
from orgmem.api.openai_schema import ChatCompletionBody, CompletionBody, GenerationBody, ResponseFrame
from orgmem.api.ratelimit import Slot
from orgmem.api.request_ids import request_id_of
from orgmem.api.state import ServingState
from orgmem.api.structured import StructuredPlan, chat_plan, completion_plan, constraint_for, encoder
from orgmem.api.turns import CompletedTurn
from orgmem.db.enums import CheckpointStatus
from orgmem.db.models import Checkpoint
from orgmem.errors import ApiError, model_not_found
from orgmem.keys import ApiKeyIdentity
from orgmem.lineage import get_org
from orgmem.lineage.audiences import ORG_AUDIENCE, served_groups
from orgmem.serving.engine import Finished, PromptScored, TextDelta
from orgmem.serving.generation import (
    AsyncGeneration,
    check_length,
    check_prompt_size,
    encode_fim,
    encode_prompts,
    prompt_chars_limit,
    split_prompts,
)
from orgmem.serving.resolve import CHECKPOINT_SEPARATOR, GROUP_SEPARATOR, ResolvedModel

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["openai"])

CHECKPOINT_HEADER = "X-Orgmem-Checkpoint"


def _headers(resolved: ResolvedModel) -> dict[str, str]:
    return {CHECKPOINT_HEADER: resolved.label, "X-Orgmem-Org": resolved.org}


def _sse(payload: dict[str, Any] | str) -> str:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"


@router.get("/models", summary="Models this key may use")
def list_models(request: Request, identity: ApiKeyIdentity = Depends(require_key)) -> dict[str, Any]:
    """The key's org model (with the groups stacked on it), ``ORG#GROUP`` for each of the key's
    groups that serves a memory; admin keys also see every servable checkpoint they may reach as
    ``ORG@CKPT`` (the org's, and those of the key's groups). Nothing of other groups is listed."""
    return {"object": "list", "data": _visible_models(get_state(request), identity)}


@router.get("/models/{model_id}", summary="One model this key may use (client.models.retrieve)")
def retrieve_model(model_id: str, request: Request,
                   identity: ApiKeyIdentity = Depends(require_key)) -> dict[str, Any]:
    """The entry of ``GET /v1/models`` with this id; 404 ``model_not_found`` for any other id, the same
    answer whether the model does not exist or belongs to what the key may not see."""
    for model in _visible_models(get_state(request), identity):
        if model["id"] == model_id:
            return model
    raise model_not_found(model_id)


def _visible_models(state: ServingState, identity: ApiKeyIdentity) -> list[dict[str, Any]]:
    with state.session() as session:
        org = get_org(session, identity.org_slug)
        created = int(org.created_at.timestamp())
        groups = served_groups(session, org, identity.groups)
        stacked = [{"audience": g, "checkpoint_id": ck} for g, ck in groups]
        data = [{"id": org.slug, "object": "model", "created": created, "owned_by": org.slug,
                 "orgmem": {"checkpoint_id": org.served_checkpoint_id, "groups": stacked}}]
        data += [{"id": f"{org.slug}{GROUP_SEPARATOR}{g}", "object": "model", "created": created,
                  "owned_by": org.slug, "orgmem": {"checkpoint_id": org.served_checkpoint_id,
                                                   "groups": [{"audience": g, "checkpoint_id": ck}]}}
                 for g, ck in groups]
        if identity.is_admin:
            rows = session.scalars(select(Checkpoint).where(
                Checkpoint.org_id == org.id, Checkpoint.status != CheckpointStatus.QUARANTINED.value,
                Checkpoint.audience.in_([ORG_AUDIENCE, *identity.groups]),
            ).order_by(Checkpoint.created_at, Checkpoint.id))
            data += [{"id": f"{org.slug}{CHECKPOINT_SEPARATOR}{ck.id}", "object": "model",
                      "created": int(ck.created_at.timestamp()), "owned_by": org.slug,
                      "orgmem": {"checkpoint_id": ck.id, "status": ck.status, "audience": ck.audience}}
                     for ck in rows]
    return data


async def _prepare(state: ServingState, identity: ApiKeyIdentity, body: GenerationBody,
                   encode: Callable[[Any], list[list[int]]]) -> tuple[AsyncGeneration, ResolvedModel]:
    engine = state.require_engine()
    check_prompt_size(body.prompt_size(), prompt_chars_limit(engine.base, state.serve.max_prompt_chars),
                      body.prompt_param)
    params = body.sampling(state.serve, vocab=len(engine.tokenizer))
    n = body.choices(state.serve, engine.max_batch)
    prompts = encode(engine.tokenizer)
    for prompt_ids in prompts:
        check_length(engine.base, prompt_ids, params, body.prompt_param)
    resolved = await run_in_threadpool(state.resolve, identity, body.model)
    memory = await run_in_threadpool(state.memory_for, resolved)
    gen = AsyncGeneration(engine, resolved, memory, prompts, params, request_id="", n=n)
    return gen, resolved


def _account(state: ServingState, resolved: ResolvedModel, gen: AsyncGeneration,
             done: list[Finished]) -> None:
    m = state.metrics
    prompt_tokens = sum(len(req.prompt_ids) for req in gen.requests)
    completion_tokens = sum(d.completion_tokens for d in done)
    m.tokens.labels(org=resolved.org, kind="prompt").inc(prompt_tokens)
    m.tokens.labels(org=resolved.org, kind="completion").inc(completion_tokens)
    m.generation.labels(org=resolved.org).observe(time.perf_counter() - gen.started)
    first = [d.first_token_s for d in done if d.first_token_s is not None]
    if first:
        m.ttft.labels(org=resolved.org).observe(min(first))
    logger.info("completion", extra={"org": resolved.org, "checkpoint": resolved.label,
                                     "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                     "choices": len(done), "finish": [d.reason for d in done]})


async def _hand_over(state: ServingState, frame: ResponseFrame, done: Finished,
                     asked: dict[str, Any] | None = None) -> None:
    """The finished reply to the turn listeners (feedback, recorded conversations); not when cancelled.
    One turn per choice (``choice_index``); ``asked``: that choice's question fields (default
    ``frame.asked``)."""
    if done.reason == "cancelled" or not state.turn_listeners:
        return
    turn = CompletedTurn(response_id=frame.id, identity=frame.identity, resolved=frame.resolved,
                         answer=done.text, finish_reason=done.reason,
                         completion_tokens=done.completion_tokens,
                         choice_index=done.choice, **(frame.asked if asked is None else asked))
    await run_in_threadpool(state.completed, turn)


#: ``stream: true`` answers server-sent events, not JSON (documented so the spec says so): each
#: event's ``data`` is one JSON chunk, the last one ``[DONE]``.
SSE_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"text/event-stream": {"schema": {
    "type": "object", "required": ["data"],
    "properties": {"data": {"type": "string"}, "event": {"type": "string"}}}}}}}


@router.post("/chat/completions", summary="Chat completion (OpenAI format; stream: true for SSE)",
             responses=SSE_RESPONSE)
async def chat_completions(body: ChatCompletionBody, request: Request,
                           identity: ApiKeyIdentity = Depends(require_key)):
    plan = chat_plan(body.model_extra or {})  # response_format, tools, tool_choice (api/structured.py)
    conversation = body.conversation()
    asked = {"messages": tuple(conversation)}
    encode = encoder(plan, conversation)

    def render(frame: ResponseFrame, gen: AsyncGeneration) -> ChatChoices:
        logprobs = body.logprobs_asked() is not None
        return ChatChoices(frame, gen.engine.token_texts, gen.choices, logprobs, plan)

    return await _respond(request, identity, body, lambda tok: [encode(tok)],
                          "chatcmpl", render, lambda _choice: asked, plan)


@router.post("/completions", summary="Text completion (OpenAI format; stream: true for SSE)",
             responses=SSE_RESPONSE)
async def completions(body: CompletionBody, request: Request,
                      identity: ApiKeyIdentity = Depends(require_key)):
    plan = completion_plan(body.model_extra or {})  # response_format only; refuses tools here
    prompts = split_prompts(body.prompt)
    n = body.n or 1
    limit = get_state(request).serve.max_prompts
    if len(prompts) > limit:
        raise ApiError(400, f"{len(prompts)} prompts given; this server takes at most {limit} per request "
                       "(ORGMEM_SERVE_MAX_PROMPTS)", param="prompt")

    def encode(tokenizer) -> list[list[int]]:
        if body.suffix is not None:
            if not isinstance(prompts[0], str):
                raise ApiError(400, "suffix needs a text prompt", param="suffix")
            return [encode_fim(tokenizer, prompts[0], body.suffix)]
        return encode_prompts(tokenizer, prompts)

    def render(frame: ResponseFrame, gen: AsyncGeneration) -> CompletionChoices:
        tokenizer = gen.engine.tokenizer
        echo = [(p if isinstance(p, str) else tokenizer.decode(p)) if body.echo else "" for p in prompts]
        return CompletionChoices(frame, gen.engine.token_texts, n, echo, body.logprobs is not None,
                                 [req.prompt_ids[0] for req in gen.requests])

    return await _respond(request, identity, body, encode, "cmpl", render,
                          lambda choice: {"prompt": _text(prompts[choice // n])}, plan)


def _text(prompt: str | list[int]) -> str | None:
    return prompt if isinstance(prompt, str) else None


def _slots(state: ServingState, identity: ApiKeyIdentity, choices: int) -> list[Slot]:
    """One in-flight slot per choice, at most all of the key's (429 when they are taken)."""
    limit = state.concurrency.per_key
    taken: list[Slot] = []
    try:
        for _ in range(min(choices, limit) if limit > 0 else choices):
            taken.append(generation_slot(state, identity))
    except BaseException:
        for slot in taken:
            slot.release()
        raise
    return taken


async def _respond(request: Request, identity: ApiKeyIdentity, body: GenerationBody, encode,
                   id_prefix: str, render: Callable[[ResponseFrame, AsyncGeneration], Any],
                   asked: Callable[[int], dict[str, Any]], plan: StructuredPlan):
    """Shared by both endpoints: start the generation, then stream SSE chunks or return one JSON body.
    The key's slots are held from here until the generation ends (``AsyncGeneration.on_end``).
    ``asked(choice)``: the question's fields of the ``CompletedTurn`` handed over when a choice ends;
    ``plan``: the reply's grammar and tools (``api/structured.py``)."""
    state = get_state(request)
    slots = _slots(state, identity, body.prompt_count() * (body.n or 1))

    def release() -> None:
        for slot in slots:
            slot.release()

    try:
        gen, resolved = await _prepare(state, identity, body, encode)
        await attach_constraints(state, gen, plan)
        gen.on_end = release
        frame = ResponseFrame(resolved, id_prefix)
        frame.identity, frame.asked = identity, asked(0)
        gen.set_request_id(frame.id)
        choices = render(frame, gen)
        gen.start()
    except BaseException:
        release()
        raise
    if body.stream:
        chunks = _stream(state, gen, frame, choices, body.include_usage, asked, request_id_of(request))
        return StreamingResponse(chunks, media_type="text/event-stream", headers=_headers(resolved))
    done = await gen.all_results()
    _account(state, resolved, gen, done)
    for d in done:
        await _hand_over(state, frame, d, asked(d.choice))
    return JSONResponse(choices.body(done, _prompt_tokens(gen)), headers=_headers(resolved))


async def attach_constraints(state: ServingState, gen: AsyncGeneration, plan: StructuredPlan) -> None:
    """Each choice of each prompt walks its own grammar (compiled on a worker thread, cached per schema)."""
    if plan.grammar is None:
        return
    engine = state.require_engine()
    for req in gen.requests:
        fresh = [await run_in_threadpool(constraint_for, plan, engine) for _ in range(req.n)]
        if req.n == 1:
            req.constraint = fresh[0]
        else:
            req.constraints = [c for c in fresh if c is not None]


def _prompt_tokens(gen: AsyncGeneration) -> int:
    return sum(len(req.prompt_ids) for req in gen.requests)


async def _stream(state: ServingState, gen: AsyncGeneration, frame: ResponseFrame, choices,
                  include_usage: bool, asked: Callable[[int], dict[str, Any]], request_id: str
                  ) -> AsyncIterator[str]:
    """SSE frames of one generation (every choice's, each chunk naming its index); an error
    mid-stream becomes an OpenAI error frame (a 5xx one names only the request id; the detail is
    logged under it)."""
    try:
        for chunk in choices.opening():
            yield _sse(chunk)
        async for event in gen.events():
            if isinstance(event, TextDelta):
                yield _sse(choices.delta(event))
            elif isinstance(event, PromptScored):
                scored = choices.scored(event)
                if scored is not None:
                    yield _sse(scored)
            elif isinstance(event, Finished):
                yield _sse(choices.final(event))
                await _hand_over(state, frame, event, asked(event.choice))
        done = [r for r in gen.results if r is not None]
        if include_usage:
            yield _sse(frame.usage_chunk(choices.object_name, _prompt_tokens(gen),
                                         sum(d.completion_tokens for d in done)))
        _account(state, frame.resolved, gen, done)
    except Exception as exc:
        err = as_api_error(exc, request_id=request_id, redact=state.redact)
        log_failure(exc, request_id, org=frame.resolved.org, checkpoint=frame.resolved.label, stream=True)
        yield _sse(err.body())
    finally:  # a client gone between two chunks closes this generator at its yield
        gen.abandon()
    yield _sse("[DONE]")
