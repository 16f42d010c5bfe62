"""The Responses API's wire format (``POST /v1/responses``): its request as a chat completion, and
its response objects and stream events as the official client parses them.

Why translate to chat: the Responses API is the chat turn with other field names (``input`` items,
``instructions``, flat tool and format objects). Mapping it onto ``ChatCompletionBody`` reuses the
whole chat path (validation, template, tools, grammar) so the two endpoints cannot drift apart.
Responses are not stored: ``previous_response_id`` is refused, ``store`` is answered false.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from orgmem.api.openai_schema import ChatCompletionBody, ResponseFrame, new_id
from orgmem.errors import ApiError
from orgmem.serving.resolve import ResolvedModel
from orgmem.serving.toolcalls import ToolCall


class ResponsesBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(..., description="The org slug (its served checkpoint) or 'ORG@CHECKPOINT' (admins).")
    input: str | list[dict[str, Any]] = Field(..., description="A user message, or a list of input items.")
    instructions: str | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    text: dict[str, Any] | None = None
    stream: bool = False
    store: bool | None = None
    previous_response_id: str | None = None
    user: str | None = None

    def as_chat(self) -> ChatCompletionBody:
        """The same request as a chat completion (400 naming the Responses field when malformed)."""
        if self.previous_response_id:
            raise ApiError(400, "previous_response_id is not supported: this server does not store "
                           "responses; send the whole conversation as input items",
                           param="previous_response_id", code="unsupported_parameter")
        fields: dict[str, Any] = {
            "model": self.model, "messages": self.messages(), "max_tokens": self.max_output_tokens,
            "temperature": self.temperature, "top_p": self.top_p, "user": self.user,
            "seed": (self.model_extra or {}).get("seed")}  # not OpenAI's, but vLLM's and LangChain's
        if self.tools:
            fields["tools"] = [_chat_tool(t, i) for i, t in enumerate(self.tools)]
        if self.tool_choice is not None:
            fields["tool_choice"] = _chat_tool_choice(self.tool_choice)
        fmt = (self.text or {}).get("format")
        if fmt is not None:
            fields["response_format"] = _chat_format(fmt)
        return ChatCompletionBody.model_validate(fields)

    def messages(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self.instructions:
            out.append({"role": "system", "content": self.instructions})
        if isinstance(self.input, str):
            return [*out, {"role": "user", "content": self.input}]
        for i, item in enumerate(self.input):
            _append_item(out, item, i)
        if not out:
            raise ApiError(400, "input has no items", param="input")
        return out


def _append_item(out: list[dict[str, Any]], item: dict[str, Any], i: int) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        out.append({"role": item.get("role", "user"), "content": _text_of(item.get("content"), i)})
    elif kind == "function_call":
        call = {"id": str(item.get("call_id") or item.get("id") or ""), "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments") or "{}"}}
        if out and out[-1]["role"] == "assistant" and out[-1].get("tool_calls") is not None:
            out[-1]["tool_calls"].append(call)  # parallel calls of one turn stay one assistant turn
        else:
            out.append({"role": "assistant", "content": "", "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item.get("output")
        out.append({"role": "tool", "tool_call_id": str(item.get("call_id") or ""),
                    "content": output if isinstance(output, str) else _text_of(output, i)})
    else:
        raise ApiError(400, f"input[{i}]: item type {kind!r} is not supported (message, function_call, "
                       "function_call_output)", param=f"input.{i}.type", code="unsupported_parameter")


def _text_of(content: Any, i: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise ApiError(400, f"input[{i}].content must be a string or a list of parts",
                       param=f"input.{i}.content")
    parts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") not in ("input_text", "output_text", "text"):
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise ApiError(400, f"input[{i}]: content part of type {kind!r} is not supported (text only)",
                           param=f"input.{i}.content", code="unsupported_parameter")
        parts.append(str(part.get("text") or ""))
    return "".join(parts)


def _chat_tool(tool: dict[str, Any], i: int) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise ApiError(400, f"tools[{i}]: tool type {tool.get('type')!r} is not supported (function only)",
                       param=f"tools.{i}.type", code="unsupported_parameter")
    keys = ("name", "description", "parameters", "strict")
    function = {k: tool[k] for k in keys if tool.get(k) is not None}
    return {"type": "function", "function": function}


def _chat_tool_choice(choice: str | dict[str, Any]) -> Any:
    if isinstance(choice, dict) and choice.get("type") == "function" and "function" not in choice:
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


def _chat_format(fmt: Any) -> Any:
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        inner = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": inner}
    return fmt


# -- response objects ----------------------------------------------------------------------------

class ResponsesFrame(ResponseFrame):
    """One response's shared fields; ``envelope`` is the ``response`` object at any status."""

    def __init__(self, resolved: ResolvedModel, body: ResponsesBody) -> None:
        super().__init__(resolved, "resp")
        self.id = new_id("resp").replace("-", "_")  # OpenAI's "resp_..." shape
        self.body = body
        self.created_at = int(time.time())

    def envelope(self, status: str, output: list[dict[str, Any]], usage: dict[str, Any] | None = None,
                 incomplete: str | None = None) -> dict[str, Any]:
        b = self.body
        return {"id": self.id, "object": "response", "created_at": self.created_at, "status": status,
                "model": self.resolved.model, "output": output, "instructions": b.instructions,
                "max_output_tokens": b.max_output_tokens, "temperature": b.temperature, "top_p": b.top_p,
                "tools": b.tools or [], "tool_choice": b.tool_choice or "auto", "parallel_tool_calls": True,
                "text": b.text or {"format": {"type": "text"}}, "store": False, "previous_response_id": None,
                "metadata": {}, "error": None, "usage": usage,
                "incomplete_details": {"reason": incomplete} if incomplete else None,
                "orgmem": {"org": self.resolved.org, "checkpoint_id": self.resolved.checkpoint_id}}


def response_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {"input_tokens": prompt_tokens, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt_tokens + completion_tokens}


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [text_part(text)] if status == "completed" else []
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def call_item(call: ToolCall, item_id: str, status: str = "completed") -> dict[str, Any]:
    return {"type": "function_call", "id": item_id, "call_id": call.id, "name": call.name,
            "arguments": call.arguments if status == "completed" else "", "status": status}


def finished_status(reason: str) -> tuple[str, str | None]:
    """(status, incomplete reason) of a reply that ended with the engine's finish ``reason``."""
    return ("incomplete", "max_output_tokens") if reason == "length" else ("completed", None)
