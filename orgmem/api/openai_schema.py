"""OpenAI wire format: request bodies we accept and the response / chunk objects we send.

Field names, object names (``chat.completion``, ``chat.completion.chunk``, ``text_completion``)
and nesting follow OpenAI's API so the official client parses them unchanged. Unknown request
fields are ignored as OpenAI-compatible servers do; parameters that would change the answer and
that we cannot honour (``n > 1``, ``logprobs``, penalties...) are refused by name.
Each response also names the checkpoint that answered: ``system_fingerprint`` (OpenAI's field
for "which backend configuration produced this") and ``orgmem.checkpoint_id``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from orgmem.api.structured import chat_turn
from orgmem.errors import ApiError
from orgmem.serving.config import ServeSettings
from orgmem.serving.resolve import ResolvedModel
from orgmem.serving.sampling import SamplingParams


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None

    def text(self, index: int) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        parts = []
        for part in self.content:
            if part.type != "text" or part.text is None:
                raise ApiError(400, f"messages[{index}]: content part of type {part.type!r} is not supported "
                               "(text only)", param=f"messages.{index}.content")
            parts.append(part.text)
        return "".join(parts)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


# response_format, tools, tool_choice: orgmem/api/structured.py (validated there, per endpoint)
_UNSUPPORTED_IF_SET = ("logprobs", "top_logprobs", "functions", "function_call",
                       "logit_bias", "suffix", "best_of")
_UNSUPPORTED_IF_NONZERO = ("presence_penalty", "frequency_penalty")


class GenerationBody(BaseModel):
    """Fields shared by chat and text completions."""

    model_config = ConfigDict(extra="allow")
    prompt_param: ClassVar[str] = "prompt"
    model: str = Field(..., description="The org slug (its served checkpoint) or 'ORG@CHECKPOINT' (admins).")
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = Field(None, ge=1)
    min_tokens: int | None = Field(None, ge=0, description="vLLM extension: no end of turn before this.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None

    def refuse_unsupported(self) -> None:
        extra = self.model_extra or {}
        for name in _UNSUPPORTED_IF_SET:
            value = extra.get(name)
            if value not in (None, False, [], {}):
                raise ApiError(400, f"parameter {name!r} is not supported by this server", param=name,
                               code="unsupported_parameter")
        for name in _UNSUPPORTED_IF_NONZERO:
            if extra.get(name) not in (None, 0, 0.0):
                raise ApiError(400, f"parameter {name!r} is not supported (only 0)", param=name,
                               code="unsupported_parameter")
        if self.n not in (None, 1):
            raise ApiError(400, "n > 1 is not supported; send several requests", param="n",
                           code="unsupported_parameter")

    def requested_max_tokens(self) -> int | None:
        return self.max_tokens

    def prompt_size(self) -> int:
        """The prompt's raw size (characters; ids for a token-id prompt), known before tokenising."""
        raise NotImplementedError

    def sampling(self, serve: ServeSettings) -> SamplingParams:
        """The request's sampling parameters, with OpenAI's defaults (temperature 1, top_p 1)."""
        self.refuse_unsupported()
        max_tokens = self.requested_max_tokens() or serve.default_max_tokens
        if max_tokens > serve.max_tokens_limit:
            raise ApiError(400, f"max_tokens {max_tokens} exceeds this server's limit of "
                           f"{serve.max_tokens_limit}", param="max_tokens")
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        try:
            return SamplingParams(max_tokens=max_tokens, stop=stop, seed=self.seed,
                                  min_tokens=self.min_tokens or 0,
                                  temperature=1.0 if self.temperature is None else self.temperature,
                                  top_p=1.0 if self.top_p is None else self.top_p)
        except Exception as exc:
            raise ApiError(400, str(exc)) from None

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionBody(GenerationBody):
    prompt_param: ClassVar[str] = "messages"
    messages: list[ChatMessage] = Field(..., min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)

    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def prompt_size(self) -> int:
        return sum(len(m.text(i)) for i, m in enumerate(self.messages))

    def conversation(self) -> list[dict[str, Any]]:
        """Messages for the chat template ('developer' is OpenAI's newer name for 'system'); tool
        results and assistant tool calls as ``orgmem.api.structured.chat_turn`` keeps them."""
        out = []
        for i, m in enumerate(self.messages):
            role = "system" if m.role == "developer" else m.role
            out.append(chat_turn(role, m.text(i), m.model_extra or {}, i))
        return out


class CompletionBody(GenerationBody):
    prompt: str | list[str] | list[int] = Field(..., description="One prompt: a string or token ids.")
    echo: bool = False

    def prompt_size(self) -> int:
        if isinstance(self.prompt, str):
            return len(self.prompt)
        return sum(len(p) if isinstance(p, str) else 1 for p in self.prompt)

    def refuse_unsupported(self) -> None:
        super().refuse_unsupported()
        if self.echo:
            raise ApiError(400, "echo is not supported", param="echo", code="unsupported_parameter")
        if isinstance(self.prompt, list) and self.prompt and isinstance(self.prompt[0], str) \
                and len(self.prompt) != 1:
            raise ApiError(400, f"{len(self.prompt)} prompts given; send one prompt per request",
                           param="prompt", code="unsupported_parameter")


# -- responses -----------------------------------------------------------------------------------

def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


class ResponseFrame:
    """The fields every response and chunk of one request share."""

    def __init__(self, resolved: ResolvedModel, object_prefix: str) -> None:
        self.id = new_id(object_prefix)
        self.created = int(time.time())
        self.resolved = resolved
        self.identity: Any = None  # the key that asked (an ApiKeyIdentity), for the turn listeners
        self.asked: dict[str, Any] = {}  # the question's fields of the CompletedTurn (api/turns.py)

    def common(self, object_name: str) -> dict[str, Any]:
        return {"id": self.id, "object": object_name, "created": self.created, "model": self.resolved.model,
                "system_fingerprint": self.resolved.label,
                "orgmem": {"org": self.resolved.org, "checkpoint_id": self.resolved.checkpoint_id}}

    # chat
    def chat(self, text: str, finish_reason: str, prompt_tokens: int, completion_tokens: int
             ) -> dict[str, Any]:
        choice = {"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                  "logprobs": None, "finish_reason": finish_reason}
        return {**self.common("chat.completion"), "choices": [choice],
                "usage": usage(prompt_tokens, completion_tokens)}

    def chat_chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**self.common("chat.completion.chunk"), "choices": [choice]}

    # text completions
    def completion(self, text: str, finish_reason: str, prompt_tokens: int, completion_tokens: int
                   ) -> dict[str, Any]:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
        return {**self.common("text_completion"), "choices": [choice],
                "usage": usage(prompt_tokens, completion_tokens)}

    def completion_chunk(self, text: str, finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
        return {**self.common("text_completion"), "choices": [choice]}

    def usage_chunk(self, object_name: str, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        return {**self.common(object_name), "choices": [], "usage": usage(prompt_tokens, completion_tokens)}
