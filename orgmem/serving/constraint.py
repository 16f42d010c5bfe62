"""The engine's hook for constrained decoding: which tokens a request may take next.

Why a protocol: the engine should not know JSON schemas or tool grammars. A request that must
follow a grammar (``response_format``, a forced tool call) carries a ``TokenConstraint``; before
sampling its row, the engine masks every token the constraint disallows, and after sampling it
tells the constraint which token was taken. Implementations wrap a constrained-decoding library.
"""

from __future__ import annotations

from typing import Protocol

from torch import Tensor


class TokenConstraint(Protocol):
    """Per-request grammar state, advanced one token at a time on the engine thread."""

    def allowed(self, vocab_size: int) -> Tensor | None:
        """A bool mask of shape (vocab_size,) of the tokens allowed next; None when any is allowed."""
        ...

    def advance(self, token: int) -> None:
        """Record the token the engine took (one the last ``allowed`` mask permitted)."""
        ...

    @property
    def finished(self) -> bool:
        """True when the grammar is complete: the engine ends the row with finish reason "stop"."""
        ...
