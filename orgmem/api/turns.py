"""What a finished completion leaves behind for the features that learn from use.

Why a hook: feedback (a rating or correction attached to a response id) and recorded
conversations both need to know, after a reply ends, which question was asked, by which key, of
which checkpoint, and what the model answered. The OpenAI routes build one ``CompletedTurn`` per
finished reply and hand it to ``ServingState.completed``; each feature registers a listener there.
A listener that fails is logged and never fails the reply, which the client already has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from orgmem.keys import ApiKeyIdentity
from orgmem.serving.resolve import ResolvedModel


@dataclass(frozen=True)
class CompletedTurn:
    """One finished reply: ``messages`` for chat (template roles), ``prompt`` for text completions."""

    response_id: str
    identity: ApiKeyIdentity
    resolved: ResolvedModel
    answer: str
    finish_reason: str
    completion_tokens: int
    messages: tuple[dict[str, str], ...] = ()
    prompt: str | None = None
    choice_index: int = 0  # with n > 1, one turn per choice

    @property
    def question(self) -> str:
        """The last user message (chat) or the prompt (text completions)."""
        if self.prompt is not None:
            return self.prompt
        users = [m["content"] for m in self.messages if m.get("role") == "user"]
        return users[-1] if users else ""


TurnListener = Callable[[CompletedTurn], None]
