"""``/v1``: the OpenAI-compatible routes (models, chat completions, text completions).

Per request: authenticate (dependency), resolve ``model`` to a checkpoint *now*, take the loaded
memory (cache or store), submit to the engine, answer as JSON or as server-sent events ending
with ``data: [DONE]``. The checkpoint(s) that answered are in the ``X-Orgmem-Checkpoint`` header:
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
from orgmem.api.openai_schema import ChatCompletionBody, CompletionBody, GenerationBody, ResponseFrame
from orgmem.api.request_ids import request_id_of
from orgmem.api.state import ServingState
from orgmem.api.structured import (
    ChatShaper,
    StructuredPlan,
    chat_message,
    chat_plan,
    completion_plan,
    constraint_for,
    encoder,
)
from orgmem.api.turns import CompletedTurn
from orgmem.db.enums import CheckpointStatus
from orgmem.db.models import Checkpoint
from orgmem.errors import model_not_found
from orgmem.keys import ApiKeyIdentity
from orgmem.lineage import get_org
from orgmem.lineage.audiences import ORG_AUDIENCE, served_groups
from orgmem.serving.engine import Finished, TextDelta
from orgmem.serving.generation import (
    AsyncGeneration,
    check_length,
    check_prompt_size,
    encode_prompt,
    prompt_chars_limit,
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
                   encode: Callable[[Any], list[int]]) -> tuple[AsyncGeneration, ResolvedModel]:
    params = body.sampling(state.serve)
    engine = state.require_engine()
    check_prompt_size(body.prompt_size(), prompt_chars_limit(engine.base, state.serve.max_prompt_chars),
                      body.prompt_param)
    prompt_ids = encode(engine.tokenizer)
    check_length(engine.base, prompt_ids, params)
    resolved = await run_in_threadpool(state.resolve, identity, body.model)
    memory = await run_in_threadpool(state.memory_for, resolved)
    gen = AsyncGeneration(engine, resolved, memory, prompt_ids, params, request_id="")
    return gen, resolved


def _account(state: ServingState, resolved: ResolvedModel, gen: AsyncGeneration, done: Finished) -> None:
    m = state.metrics
    m.tokens.labels(org=resolved.org, kind="prompt").inc(done.prompt_tokens)
    m.tokens.labels(org=resolved.org, kind="completion").inc(done.completion_tokens)
    m.generation.labels(org=resolved.org).observe(time.perf_counter() - gen.started)
    if done.first_token_s is not None:
        m.ttft.labels(org=resolved.org).observe(done.first_token_s)
    logger.info("completion", extra={"org": resolved.org, "checkpoint": resolved.label,
                                     "prompt_tokens": done.prompt_tokens,
                                     "completion_tokens": done.completion_tokens, "finish": done.reason})


async def _hand_over(state: ServingState, frame: ResponseFrame, done: Finished) -> None:
    """The finished reply to the turn listeners (feedback, recorded conversations); not when cancelled."""
    if done.reason == "cancelled" or not state.turn_listeners:
        return
    turn = CompletedTurn(response_id=frame.id, identity=frame.identity, resolved=frame.resolved,
                         answer=done.text, finish_reason=done.reason,
                         completion_tokens=done.completion_tokens, **frame.asked)
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
    return await _respond(request, identity, body, encoder(plan, conversation), "chatcmpl",
                          _structured_chunks(plan), _structured_render(plan),
                          {"messages": tuple(conversation)})


@router.post("/completions", summary="Text completion (OpenAI format; stream: true for SSE)",
             responses=SSE_RESPONSE)
async def completions(body: CompletionBody, request: Request,
                      identity: ApiKeyIdentity = Depends(require_key)):
    prompt = body.prompt if isinstance(body.prompt, str) else None
    completion_plan(body.model_extra or {})  # response_format only; refuses tools here
    return await _respond(request, identity, body, lambda tok: encode_prompt(tok, body.prompt),
                          "cmpl", _completion_chunks, ResponseFrame.completion, {"prompt": prompt})


async def _respond(request: Request, identity: ApiKeyIdentity, body, encode, id_prefix: str,
                   chunker, render, asked: dict[str, Any]):
    """Shared by both endpoints: start the generation, then stream SSE chunks or return one JSON body.
    The key's slot is held from here until the generation ends (``AsyncGeneration.on_end``).
    ``asked``: the question's fields of the ``CompletedTurn`` handed to the state when the reply ends."""
    state = get_state(request)
    slot = generation_slot(state, identity)
    try:
        gen, resolved = await _prepare(state, identity, body, encode)
        extra = body.model_extra or {}
        plan = chat_plan(extra) if isinstance(body, ChatCompletionBody) else completion_plan(extra)
        gen.request.constraint = await run_in_threadpool(constraint_for, plan, state.require_engine())
        gen.on_end = slot.release
        frame = ResponseFrame(resolved, id_prefix)
        frame.identity, frame.asked = identity, asked
        gen.request.request_id = frame.id
        gen.start()
    except BaseException:
        slot.release()
        raise
    if body.stream:
        chunks = chunker(state, gen, frame, body.include_usage, request_id_of(request))
        return StreamingResponse(chunks, media_type="text/event-stream", headers=_headers(resolved))
    done = await gen.result()
    _account(state, resolved, gen, done)
    await _hand_over(state, frame, done)
    return JSONResponse(render(frame, done.text, done.reason, done.prompt_tokens, done.completion_tokens),
                        headers=_headers(resolved))


async def _stream(state: ServingState, gen: AsyncGeneration, frame: ResponseFrame,
                  delta: Callable[[str], dict[str, Any]], final: Callable[[Finished], dict[str, Any]],
                  usage_object: str | None, request_id: str) -> AsyncIterator[str]:
    """SSE frames of one generation; an error mid-stream becomes an OpenAI error frame (a 5xx one
    names only the request id; the detail is logged under it)."""
    try:
        async for event in gen.events():
            if isinstance(event, TextDelta):
                yield _sse(delta(event.text))
            elif isinstance(event, Finished):
                yield _sse(final(event))
                if usage_object:
                    yield _sse(frame.usage_chunk(usage_object, event.prompt_tokens, event.completion_tokens))
                _account(state, frame.resolved, gen, event)
                await _hand_over(state, frame, event)
    except Exception as exc:
        err = as_api_error(exc, request_id=request_id, redact=state.redact)
        log_failure(exc, request_id, org=frame.resolved.org, checkpoint=frame.resolved.label, stream=True)
        yield _sse(err.body())
    yield _sse("[DONE]")


async def _chat_chunks(state: ServingState, gen: AsyncGeneration, frame: ResponseFrame,
                       include_usage: bool, request_id: str, plan: StructuredPlan | None = None
                       ) -> AsyncIterator[str]:
    shaper = ChatShaper(plan or StructuredPlan())  # tool calls out of the text (api/structured.py)
    yield _sse(frame.chat_chunk({"role": "assistant", "content": ""}))
    async for line in _stream(state, gen, frame, lambda text: frame.chat_chunk(shaper.delta(text)),
                              lambda done: frame.chat_chunk(shaper.final_delta(),
                                                            shaper.finish_reason(done.reason)),
                              "chat.completion.chunk" if include_usage else None, request_id):
        yield line


# -- structured output and tools (orgmem/api/structured.py) ---------------------------------------

def _structured_chunks(plan: StructuredPlan):
    def chunks(state, gen, frame, include_usage, request_id):
        return _chat_chunks(state, gen, frame, include_usage, request_id, plan)
    return chunks


def _structured_render(plan: StructuredPlan):
    def render(frame: ResponseFrame, text: str, reason: str, prompt_tokens: int, completion_tokens: int):
        body = frame.chat(text, reason, prompt_tokens, completion_tokens)
        body["choices"][0]["message"], body["choices"][0]["finish_reason"] = chat_message(plan, text, reason)
        return body
    return render


async def _completion_chunks(state: ServingState, gen: AsyncGeneration, frame: ResponseFrame,
                             include_usage: bool, request_id: str) -> AsyncIterator[str]:
    async for line in _stream(state, gen, frame, lambda text: frame.completion_chunk(text),
                              lambda done: frame.completion_chunk("", done.reason),
                              "text_completion" if include_usage else None, request_id):
        yield line
