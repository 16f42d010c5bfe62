"""The choices of one generation in OpenAI's shapes, as one JSON body or as stream chunks.

A request has ``prompts x n`` choices (``choices[i].index``; stream chunks name theirs); chat
logprobs are ``{"content": [{token, logprob, bytes, top_logprobs: [...]}]}``, completions' the
legacy ``{tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset}``. ``echo``
(completions) puts the prompt's text first and, with logprobs, its token logprobs (the first
token's null). Usage counts each prompt once and every choice's tokens, as OpenAI does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orgmem.api.openai_schema import ResponseFrame
from orgmem.api.structured import ChatShaper, StructuredPlan, chat_message
from orgmem.serving.engine import Finished, PromptScored, TextDelta
from orgmem.serving.logprobs import TokenTexts, floor
from orgmem.serving.sampling import TokenLogprob


def chat_logprobs(entries: Sequence[TokenLogprob], texts: TokenTexts) -> list[dict[str, Any]]:
    """``choices[i].logprobs.content`` of chat completions."""
    def one(token: int, logprob: float) -> dict[str, Any]:
        text, raw = texts(token)
        return {"token": text, "logprob": floor(logprob), "bytes": raw}

    return [{**one(e.token, e.logprob), "top_logprobs": [one(t, lp) for t, lp in e.top]} for e in entries]


def completion_logprobs(entries: Sequence[TokenLogprob | None], texts: TokenTexts, offset: int = 0,
                        first_token: int | None = None) -> tuple[dict[str, Any], int]:
    """Legacy completions logprobs of ``entries`` (None: the prompt's first token, ``first_token``)
    from text offset ``offset``; and the offset after them. ``top_logprobs`` holds the k most likely
    and the sampled token (vLLM's shape), keyed by text."""
    out: dict[str, Any] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    first_text = texts.text(first_token) if first_token is not None else ""
    for e in entries:
        text = texts.text(e.token) if e is not None else first_text
        out["tokens"].append(text)
        out["text_offset"].append(offset)
        offset += len(text)
        if e is None:
            out["token_logprobs"].append(None)
            out["top_logprobs"].append(None)
            continue
        top = {texts.text(t): floor(lp) for t, lp in e.top}
        top.setdefault(text, floor(e.logprob))
        out["token_logprobs"].append(floor(e.logprob))
        out["top_logprobs"].append(top)
    return out, offset


class ChatChoices:
    """Chat completion choices; ``logprobs``: whether the request asked for them; ``plan``: the tools
    whose ``<tool_call>`` blocks become ``tool_calls`` (``api/structured.py``), one shaper per choice."""

    object_name = "chat.completion.chunk"

    def __init__(self, frame: ResponseFrame, texts: TokenTexts, choices: int, logprobs: bool,
                 plan: StructuredPlan | None = None) -> None:
        self.frame, self.texts, self.choices, self.logprobs = frame, texts, choices, logprobs
        self.plan = plan or StructuredPlan()
        self.shapers = [ChatShaper(self.plan) for _ in range(choices)]

    def _logprobs(self, entries: Sequence[TokenLogprob] | None) -> dict[str, Any] | None:
        if not self.logprobs:
            return None
        return {"content": chat_logprobs(entries or (), self.texts), "refusal": None}

    def body(self, results: list[Finished], prompt_tokens: int) -> dict[str, Any]:
        choices = []
        for r in results:
            choice = ResponseFrame.chat_choice(r.choice, r.text, r.reason, self._logprobs(r.logprobs))
            choice["message"], choice["finish_reason"] = chat_message(self.plan, r.text, r.reason)
            choices.append(choice)
        return self.frame.chat(choices, prompt_tokens, sum(r.completion_tokens for r in results))

    def opening(self) -> list[dict[str, Any]]:
        return [self.frame.chat_chunk({"role": "assistant", "content": ""}, index=i)
                for i in range(self.choices)]

    def delta(self, event: TextDelta) -> dict[str, Any]:
        return self.frame.chat_chunk(self.shapers[event.choice].delta(event.text), index=event.choice,
                                     logprobs=self._logprobs(event.logprobs))

    def scored(self, event: PromptScored) -> dict[str, Any] | None:
        return None

    def final(self, event: Finished) -> dict[str, Any]:
        shaper = self.shapers[event.choice]
        return self.frame.chat_chunk(shaper.final_delta(), shaper.finish_reason(event.reason),
                                     index=event.choice)


class CompletionChoices:
    """Text completion choices: ``n`` per prompt; ``echo_texts`` per prompt ('' without echo)."""

    object_name = "text_completion"

    def __init__(self, frame: ResponseFrame, texts: TokenTexts, n: int, echo_texts: list[str],
                 logprobs: bool, first_tokens: list[int]) -> None:
        """``first_tokens``: each prompt's first token id (echo names it, without a logprob)."""
        self.frame, self.texts, self.n, self.echo_texts, self.logprobs = frame, texts, n, echo_texts, logprobs
        self.first_tokens = first_tokens
        self.echo = any(echo_texts)
        self._offsets = [0] * (n * len(echo_texts))  # text offset reached by each streamed choice

    def _echo(self, choice: int) -> str:
        return self.echo_texts[choice // self.n]

    def body(self, results: list[Finished], prompt_tokens: int) -> dict[str, Any]:
        choices = []
        for r in results:
            logprobs = None
            if self.logprobs:
                entries: list[TokenLogprob | None] = [*(r.prompt_logprobs or ()), *(r.logprobs or ())]
                logprobs, _ = completion_logprobs(entries, self.texts,
                                                  first_token=self.first_tokens[r.choice // self.n])
            choices.append(ResponseFrame.completion_choice(r.choice, self._echo(r.choice) + r.text, r.reason,
                                                           logprobs))
        return self.frame.completion(choices, prompt_tokens, sum(r.completion_tokens for r in results))

    def opening(self) -> list[dict[str, Any]]:
        if not self.echo or self.logprobs:  # with logprobs the echo waits for the prompt's scores
            return []
        return [self.frame.completion_chunk(self._echo(i), index=i) for i in range(len(self._offsets))]

    def delta(self, event: TextDelta) -> dict[str, Any]:
        logprobs = None
        if self.logprobs:
            logprobs, self._offsets[event.choice] = completion_logprobs(
                event.logprobs, self.texts, self._offsets[event.choice])
        return self.frame.completion_chunk(event.text, index=event.choice, logprobs=logprobs)

    def scored(self, event: PromptScored) -> dict[str, Any] | None:
        if not (self.echo and self.logprobs):
            return None
        logprobs, self._offsets[event.choice] = completion_logprobs(
            event.logprobs, self.texts, first_token=self.first_tokens[event.choice // self.n])
        return self.frame.completion_chunk(self._echo(event.choice), index=event.choice, logprobs=logprobs)

    def final(self, event: Finished) -> dict[str, Any]:
        return self.frame.completion_chunk("", event.reason, index=event.choice)

