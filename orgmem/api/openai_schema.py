"""OpenAI wire format: request bodies we accept and the response / chunk objects we send.

Field names, object names (``chat.completion``, ``chat.completion.chunk``, ``text_completion``)
and nesting follow OpenAI's API so the official client parses them unchanged. Unknown request
fields are ignored as OpenAI-compatible servers do; parameters that would change the answer and
that we cannot honour (``functions``, ``function_call``, ``best_of > 1``) are
refused by name. docs/openai_api.md lists what is supported.
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
from orgmem.serving.sampling import MAX_LOGPROBS, SamplingError, SamplingParams


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
_UNSUPPORTED_IF_SET = ("functions", "function_call")
_UNSUPPORTED_ABOVE_ONE = ("best_of",)


class GenerationBody(BaseModel):
    """Fields shared by chat and text completions."""

    model_config = ConfigDict(extra="allow")
    prompt_param: ClassVar[str] = "prompt"
    model: str = Field(..., description="The org slug (its served checkpoint) or 'ORG@CHECKPOINT' (admins).")
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**63), lt=2**64)
    n: int | None = Field(None, ge=1, description="Choices to sample from the prompt (ORGMEM_SERVE_MAX_N).")
    presence_penalty: float | None = Field(None, ge=-2, le=2, description="OpenAI: over generated tokens.")
    frequency_penalty: float | None = Field(None, ge=-2, le=2, description="OpenAI: over generated tokens.")
    repetition_penalty: float | None = Field(
        None, gt=0, allow_inf_nan=False,
        description="vLLM/HF extension: over prompt and generated tokens; 1 = off.")
    logit_bias: dict[str, float] | None = Field(
        None, description="Token id (a string) -> bias between -100 and 100, added to its logit.")
    top_k: int | None = Field(None, ge=-1, description="vLLM extension: -1 or 0 = off.")
    min_p: float | None = Field(None, ge=0, le=1, description="vLLM extension: 0 = off.")
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
        for name in _UNSUPPORTED_ABOVE_ONE:
            if extra.get(name) not in (None, 1):
                raise ApiError(400, f"parameter {name!r} is not supported (only 1; n gives several "
                               "choices)", param=name, code="unsupported_parameter")

    def requested_max_tokens(self) -> int | None:
        return self.max_tokens

    def prompt_size(self) -> int:
        """The prompt's raw size (characters; ids for a token-id prompt), known before tokenising."""
        raise NotImplementedError

    def prompt_count(self) -> int:
        """Prompts in the request (a completions list prompt has several)."""
        return 1

    def logprobs_asked(self) -> int | None:
        """Top alternatives per token to report (None: no logprobs)."""
        return None

    def choices(self, serve: ServeSettings, max_batch: int) -> int:
        """``n``, within ``ORGMEM_SERVE_MAX_N`` and the batch (its choices decode side by side)."""
        n = self.n or 1
        limit = min(serve.max_n, max_batch)
        if n > limit:
            raise ApiError(400, f"n={n} exceeds this server's limit of {limit} choices per prompt "
                           "(ORGMEM_SERVE_MAX_N and ORGMEM_SERVE_MAX_BATCH)", param="n")
        return n

    def sampling(self, serve: ServeSettings, vocab: int | None = None) -> SamplingParams:
        """The request's sampling parameters, with OpenAI's defaults (temperature 1, top_p 1).
        ``vocab``: the tokenizer's size, which ``logit_bias`` ids must be below."""
        self.refuse_unsupported()
        max_tokens = self.requested_max_tokens() or serve.default_max_tokens
        if max_tokens > serve.max_tokens_limit:
            raise ApiError(400, f"max_tokens {max_tokens} exceeds this server's limit of "
                           f"{serve.max_tokens_limit}", param="max_tokens")
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        try:
            return SamplingParams(
                max_tokens=max_tokens, stop=stop, seed=self.seed, min_tokens=self.min_tokens or 0,
                temperature=1.0 if self.temperature is None else self.temperature,
                top_p=1.0 if self.top_p is None else self.top_p,
                top_k=max(0, self.top_k or 0), min_p=self.min_p or 0.0,
                presence_penalty=self.presence_penalty or 0.0,
                frequency_penalty=self.frequency_penalty or 0.0,
                repetition_penalty=1.0 if self.repetition_penalty is None else self.repetition_penalty,
                logit_bias=_logit_bias(self.logit_bias, vocab), **self._logprob_params())
        except SamplingError as exc:
            raise ApiError(400, str(exc), param=exc.param) from None
        except ApiError:
            raise
        except Exception as exc:
            raise ApiError(400, str(exc)) from None

    def _logprob_params(self) -> dict[str, int | None]:
        return {"logprobs": self.logprobs_asked()}

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def _logit_bias(bias: dict[str, float] | None, vocab: int | None) -> tuple[tuple[int, float], ...]:
    """OpenAI's ``{"token id": bias}`` as (id, bias) pairs; 400 naming ``logit_bias`` for a key that
    is not a token id of this base."""
    pairs = []
    for key, value in (bias or {}).items():
        try:
            token = int(key)
        except ValueError:
            raise ApiError(400, f"logit_bias key {key[:40]!r} is not a token id",
                           param="logit_bias") from None
        if token < 0 or (vocab is not None and token >= vocab):
            limit = f"0..{vocab - 1}" if vocab is not None else ">= 0"
            raise ApiError(400, f"logit_bias token id {token} is outside the vocabulary ({limit})",
                           param="logit_bias")
        pairs.append((token, float(value)))
    return tuple(pairs)


class ChatCompletionBody(GenerationBody):
    prompt_param: ClassVar[str] = "messages"
    messages: list[ChatMessage] = Field(..., min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = Field(None, description="Each generated token's logprob (raw model output).")
    top_logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS,
                                     description="Most likely alternatives per token; needs logprobs.")

    def logprobs_asked(self) -> int | None:
        if self.top_logprobs is not None and not self.logprobs:
            raise ApiError(400, "top_logprobs needs logprobs: true", param="top_logprobs")
        return (self.top_logprobs or 0) if self.logprobs else None

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
    prompt: str | list[str] | list[int] | list[list[int]] = Field(
        ..., description="A string, token ids, or a list of either (one choice per prompt and n; "
        "ORGMEM_SERVE_MAX_PROMPTS).")
    echo: bool = Field(False, description="Prepend the prompt (and, with logprobs, its token logprobs).")
    logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS,
                                 description="Each token's logprob and this many most likely alternatives.")
    suffix: str | None = Field(None, description="Text after the completion: only on a base with "
                               "fill-in-the-middle tokens (else 400).")

    def prompt_size(self) -> int:
        if isinstance(self.prompt, str):
            return len(self.prompt) + len(self.suffix or "")
        return sum(len(p) if isinstance(p, str | list) else 1 for p in self.prompt) + len(self.suffix or "")

    def prompt_count(self) -> int:
        if isinstance(self.prompt, list) and self.prompt and not isinstance(self.prompt[0], int):
            return len(self.prompt)
        return 1

    def logprobs_asked(self) -> int | None:
        return self.logprobs

    def _logprob_params(self) -> dict[str, int | None]:
        return {"logprobs": self.logprobs, "prompt_logprobs": self.logprobs if self.echo else None}

    def refuse_unsupported(self) -> None:
        super().refuse_unsupported()
        if self.suffix and self.prompt_count() != 1:
            raise ApiError(400, "suffix is supported with one prompt only", param="suffix")


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
    @staticmethod
    def chat_choice(index: int, text: str, finish_reason: str, logprobs: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
        return {"index": index, "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": logprobs, "finish_reason": finish_reason}

    def chat(self, choices: list[dict[str, Any]], prompt_tokens: int, completion_tokens: int
             ) -> dict[str, Any]:
        return {**self.common("chat.completion"), "choices": choices,
                "usage": usage(prompt_tokens, completion_tokens)}

    def chat_chunk(self, delta: dict[str, Any], finish_reason: str | None = None, index: int = 0,
                   logprobs: dict[str, Any] | None = None) -> dict[str, Any]:
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}
        return {**self.common("chat.completion.chunk"), "choices": [choice]}

    # text completions
    @staticmethod
    def completion_choice(index: int, text: str, finish_reason: str | None,
                          logprobs: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish_reason}

    def completion(self, choices: list[dict[str, Any]], prompt_tokens: int, completion_tokens: int
                   ) -> dict[str, Any]:
        return {**self.common("text_completion"), "choices": choices,
                "usage": usage(prompt_tokens, completion_tokens)}

    def completion_chunk(self, text: str, finish_reason: str | None = None, index: int = 0,
                         logprobs: dict[str, Any] | None = None) -> dict[str, Any]:
        return {**self.common("text_completion"),
                "choices": [self.completion_choice(index, text, finish_reason, logprobs)]}

    def usage_chunk(self, object_name: str, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        return {**self.common(object_name), "choices": [], "usage": usage(prompt_tokens, completion_tokens)}
