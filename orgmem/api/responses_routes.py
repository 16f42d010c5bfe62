"""``POST /v1/responses``: OpenAI's Responses API over the chat path (``client.responses.create``,
``client.responses.stream``).

The request becomes a chat completion (``ResponsesBody.as_chat``) and runs exactly as
``/v1/chat/completions`` does (key slot, resolve, template, tools, grammar: the helpers of
``openai_routes``); the reply is rendered as output items (a ``message`` with ``output_text``, a
``function_call`` per tool call). Streaming sends the official event sequence: response.created,
response.in_progress, then per item response.output_item.added, (response.content_part.added,
response.output_text.delta..., response.output_text.done, response.content_part.done) or
(response.function_call_arguments.delta, .done), response.output_item.done, and last
response.completed, or response.incomplete when ``max_output_tokens`` cut the reply.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from orgmem.api.auth import generation_slot, get_state, require_key
from orgmem.api.errors import as_api_error, log_failure
from orgmem.api.openai_routes import (
    SSE_RESPONSE,
    _account,
    _hand_over,
    _headers,
    _prepare,
    attach_constraints,
)
from orgmem.api.openai_schema import ChatCompletionBody, new_id
from orgmem.api.request_ids import request_id_of
from orgmem.api.responses_schema import (
    ResponsesBody,
    ResponsesFrame,
    call_item,
    finished_status,
    message_item,
    response_usage,
    text_part,
)
from orgmem.api.state import ServingState
from orgmem.api.structured import StructuredPlan, chat_message, chat_plan, encoder
from orgmem.errors import ApiError
from orgmem.keys import ApiKeyIdentity
from orgmem.serving.engine import Finished, TextDelta
from orgmem.serving.generation import AsyncGeneration
from orgmem.serving.toolcalls import ToolCall, ToolCallSplitter

router = APIRouter(prefix="/v1", tags=["openai"])


def _as_chat(body: ResponsesBody) -> ChatCompletionBody:
    try:
        return body.as_chat()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ApiError(400, f"input: {where}: {first['msg']}", param="input") from None


@router.post("/responses", summary="Create a model response (OpenAI Responses API; stream: true for SSE)",
             responses=SSE_RESPONSE)
async def create_response(body: ResponsesBody, request: Request,
                          identity: ApiKeyIdentity = Depends(require_key)):
    chat = _as_chat(body)
    plan = chat_plan(chat.model_extra or {})
    conversation = chat.conversation()
    state = get_state(request)
    slot = generation_slot(state, identity)
    try:
        encode = encoder(plan, conversation)
        gen, resolved = await _prepare(state, identity, chat, lambda tok: [encode(tok)])
        await attach_constraints(state, gen, plan)
        gen.on_end = slot.release
        frame = ResponsesFrame(resolved, body)
        frame.identity, frame.asked = identity, {"messages": tuple(conversation)}
        gen.set_request_id(frame.id)
        gen.start()
    except BaseException:
        slot.release()
        raise
    if body.stream:
        events = _stream(state, gen, frame, plan, request_id_of(request))
        return StreamingResponse(events, media_type="text/event-stream", headers=_headers(resolved))
    done = await gen.result()
    _account(state, resolved, gen, [done])
    await _hand_over(state, frame, done)
    return JSONResponse(_finished(frame, plan, done), headers=_headers(resolved))


def _finished(frame: ResponsesFrame, plan: StructuredPlan, done: Finished) -> dict[str, Any]:
    message, _ = chat_message(plan, done.text, done.reason)
    output = []
    if message["content"] or not message.get("tool_calls"):
        output.append(message_item(new_id("msg").replace("-", "_"), message["content"] or ""))
    for c in message.get("tool_calls", []):
        call = ToolCall(c["id"], c["function"]["name"], c["function"]["arguments"])
        output.append(call_item(call, new_id("fc").replace("-", "_")))
    status, incomplete = finished_status(done.reason)
    usage = response_usage(done.prompt_tokens, done.completion_tokens)
    return frame.envelope(status, output, usage, incomplete)


class _Events:
    """The stream's events in order, numbered; output items opened and closed as the text arrives."""

    def __init__(self, frame: ResponsesFrame, plan: StructuredPlan) -> None:
        self.frame = frame
        self.splitter = ToolCallSplitter(plan.names) if plan.names else None
        self.seq = 0
        self.output: list[dict[str, Any]] = []
        self.message_id: str | None = None  # the message item now open
        self.text: list[str] = []

    def event(self, kind: str, **fields: Any) -> str:
        payload = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return f"event: {kind}\ndata: {json.dumps(payload)}\n\n"

    def start(self) -> list[str]:
        envelope = self.frame.envelope("in_progress", [])
        return [self.event("response.created", response=envelope),
                self.event("response.in_progress", response=envelope)]

    def delta(self, text: str) -> list[str]:
        if self.splitter is None:
            return self._content(text)
        content, calls = self.splitter.feed(text)
        lines = self._content(content)
        for call in calls:
            lines += self._call(call)
        return lines

    def finish(self, done: Finished) -> list[str]:
        lines = self._content(self.splitter.finish()) if self.splitter is not None else []
        if not self.output and self.message_id is None:
            lines += self._open_message()
        lines += self._close_message()
        status, incomplete = finished_status(done.reason)
        usage = response_usage(done.prompt_tokens, done.completion_tokens)
        envelope = self.frame.envelope(status, self.output, usage, incomplete)
        return [*lines, self.event(f"response.{status}", response=envelope)]

    def error(self, err: dict[str, Any]) -> str:
        return self.event("error", code=err.get("code"), message=err.get("message"), param=err.get("param"))

    def _index(self) -> int:
        return len(self.output)

    def _open_message(self) -> list[str]:
        self.message_id, self.text = new_id("msg").replace("-", "_"), []
        where = {"item_id": self.message_id, "output_index": self._index(), "content_index": 0}
        return [self.event("response.output_item.added", output_index=self._index(),
                           item=message_item(self.message_id, "", "in_progress")),
                self.event("response.content_part.added", part=text_part(""), **where)]

    def _content(self, text: str) -> list[str]:
        if not text:
            return []
        lines = self._open_message() if self.message_id is None else []
        self.text.append(text)
        return [*lines, self.event("response.output_text.delta", item_id=self.message_id,
                                   output_index=self._index(), content_index=0, delta=text, logprobs=[])]

    def _close_message(self) -> list[str]:
        if self.message_id is None:
            return []
        text, item_id = "".join(self.text), self.message_id
        where = {"item_id": item_id, "output_index": self._index(), "content_index": 0}
        item = message_item(item_id, text)
        lines = [self.event("response.output_text.done", text=text, logprobs=[], **where),
                 self.event("response.content_part.done", part=text_part(text), **where),
                 self.event("response.output_item.done", output_index=self._index(), item=item)]
        self.output.append(item)
        self.message_id = None
        return lines

    def _call(self, call: ToolCall) -> list[str]:
        lines = self._close_message()
        item_id, index = new_id("fc").replace("-", "_"), self._index()
        item = call_item(call, item_id)
        lines += [self.event("response.output_item.added", output_index=index,
                             item=call_item(call, item_id, "in_progress")),
                  self.event("response.function_call_arguments.delta", item_id=item_id, output_index=index,
                             delta=call.arguments),
                  self.event("response.function_call_arguments.done", item_id=item_id, output_index=index,
                             arguments=call.arguments),
                  self.event("response.output_item.done", output_index=index, item=item)]
        self.output.append(item)
        return lines


async def _stream(state: ServingState, gen: AsyncGeneration, frame: ResponsesFrame, plan: StructuredPlan,
                  request_id: str) -> AsyncIterator[str]:
    events = _Events(frame, plan)
    for line in events.start():
        yield line
    try:
        async for event in gen.events():
            if isinstance(event, TextDelta):
                for line in events.delta(event.text):
                    yield line
            elif isinstance(event, Finished):
                for line in events.finish(event):
                    yield line
                _account(state, frame.resolved, gen, [event])
                await _hand_over(state, frame, event)
    except Exception as exc:
        err = as_api_error(exc, request_id=request_id, redact=state.redact)
        log_failure(exc, request_id, org=frame.resolved.org, checkpoint=frame.resolved.label, stream=True)
        yield events.error(err.body()["error"])
