"""Per-conversation Titans memory: written as a conversation's tokens pass, read by its later turns.

Why: the attention window ends; a Titans memory does not. A conversation opted in by id gets its
own memory state (the base's meta-trained projections, fresh weights W_0, which read exactly zero),
written with the hidden states of every token that passes, so what was said before the window is
still there to read. It is the conversation's alone:

- keyed by (API key id, conversation id): the same conversation id under another key is another
  state, so one caller can never read or extend another's;
- bounded: at most ``max_conversations`` states and ``max_bytes`` bytes (least recently used go
  first), each expired ``ttl_seconds`` after its last use; ``drop_key`` forgets a revoked key's;
- never written into the org's memory: nothing here touches the org checkpoint (a fact told in a
  conversation reaches the org only through the reviewed feedback path).

The serving engine would call, per conversation row and Titans layer ``layer`` (see
``docs/titans.md``, "Conversation memory", for what remains to wire it in):

    state = conversations.state_for(key_id, conversation_id)   # None: not opted in / no layer
    out = out + state.forward(layer, x_new)                    # read then write the new tokens

``forward`` reads every token with the weights written before its chunk (causal: a token never
reads itself) and writes the tokens; ``read`` and ``write`` do one side only (e.g. a prompt
re-sent in full is written once, then only read).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from orgmem.errors import OrgmemError
from orgmem.memory.titans.neural_memory import MemoryState, NeuralMemory


@dataclass(frozen=True)
class ConversationLimits:
    """Bounds of the conversation store (one per serving process)."""

    max_conversations: int = 1024
    max_bytes: int = 1 << 30
    ttl_seconds: float = 3600.0

    def __post_init__(self) -> None:
        if self.max_conversations < 1 or self.max_bytes < 1 or self.ttl_seconds <= 0:
            raise ValueError(f"conversation limits must be positive, got {self}")


class ConversationState:
    """One conversation's memory: a ``MemoryState`` per Titans layer (batch of one)."""

    def __init__(self, memories: Mapping[str, NeuralMemory], on_change: Callable[[], None]) -> None:
        self._memories = memories
        self._on_change = on_change
        self.states: dict[str, MemoryState] = {}
        self.tokens_written = 0
        self.last_used = 0.0

    def _memory(self, layer: str) -> NeuralMemory:
        memory = self._memories.get(str(layer))
        if memory is None:
            raise OrgmemError(f"conversation memory has no Titans layer {layer!r} "
                              f"(layers: {', '.join(sorted(self._memories))})")
        return memory

    def _state(self, layer: str) -> MemoryState:
        key = str(layer)
        if key not in self.states:
            memory = self._memory(key)
            self.states[key] = memory.initial_state(1).detach()
        return self.states[key]

    @torch.no_grad()
    def forward(self, layer: str, hidden: Tensor) -> Tensor:
        """Read then write ``hidden`` (1, n, d), the new tokens' states entering ``layer``; returns the
        gated read to add to that layer's output."""
        memory = self._memory(layer)
        y, state = memory(hidden, self._state(layer))
        self._store(layer, state, hidden.shape[1])
        return y

    @torch.no_grad()
    def write(self, layer: str, hidden: Tensor) -> None:
        """Write ``hidden`` (1, n, d) without using the read."""
        self.forward(layer, hidden)

    @torch.no_grad()
    def read(self, layer: str, hidden: Tensor) -> Tensor:
        """The gated read for ``hidden`` (1, n, d) with what is written so far; writes nothing."""
        return self._memory(layer)(hidden, self._state(layer), write=False)[0]

    def _store(self, layer: str, state: MemoryState, tokens: int) -> None:
        self.states[str(layer)] = state.detach()
        self.tokens_written += tokens
        self._on_change()

    def nbytes(self) -> int:
        return sum(s.nbytes() for s in self.states.values())


class ConversationMemory:
    """The bounded, per-key store of conversation states (thread-safe)."""

    def __init__(self, memories: Mapping[str, NeuralMemory], limits: ConversationLimits | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not memories:
            raise OrgmemError("conversation memory needs at least one Titans layer")
        self.memories = dict(memories)
        self.limits = limits or ConversationLimits()
        self._clock = clock
        self._lock = threading.RLock()
        self._states: OrderedDict[tuple[str, str], ConversationState] = OrderedDict()
        self.evicted = 0
        self.expired = 0

    @classmethod
    def for_base(cls, base, config, limits: ConversationLimits | None = None) -> ConversationMemory:
        """Memories with the base's meta-trained projections (``config.meta_init``), not attached."""
        from orgmem.memory.titans.model import TitansMemory

        kind = TitansMemory(base, config, config.resolve_layers(base.num_layers)).float()
        return cls(kind.layer_memories, limits)

    def state_for(self, key_id: str, conversation_id: str) -> ConversationState:
        """The conversation's state, created empty on first use; marks it most recently used."""
        if not key_id or not conversation_id:
            raise OrgmemError("a conversation memory needs both an API key id and a conversation id")
        with self._lock:
            now = self._clock()
            self._expire(now)
            key = (key_id, conversation_id)
            state = self._states.get(key)
            if state is None:
                state = ConversationState(self.memories, self._bound)
                self._states[key] = state
            self._states.move_to_end(key)
            state.last_used = now
            self._bound()
            return state

    def get(self, key_id: str, conversation_id: str) -> ConversationState | None:
        """The state if it exists and has not expired (creates nothing)."""
        with self._lock:
            self._expire(self._clock())
            return self._states.get((key_id, conversation_id))

    def drop(self, key_id: str, conversation_id: str) -> bool:
        with self._lock:
            return self._states.pop((key_id, conversation_id), None) is not None

    def drop_key(self, key_id: str) -> int:
        """Forget every conversation of a key (revoked or rotated); returns how many."""
        with self._lock:
            gone = [k for k in self._states if k[0] == key_id]
            for k in gone:
                del self._states[k]
            return len(gone)

    def conversations(self, key_id: str) -> list[str]:
        with self._lock:
            return [c for k, c in self._states if k == key_id]

    def nbytes(self) -> int:
        with self._lock:
            return sum(s.nbytes() for s in self._states.values())

    def __len__(self) -> int:
        return len(self._states)

    def _expire(self, now: float) -> None:
        ttl = self.limits.ttl_seconds
        for key in [k for k, s in self._states.items() if now - s.last_used > ttl]:
            del self._states[key]
            self.expired += 1

    def _bound(self) -> None:
        """Evict least recently used states until both limits hold (the newest always stays)."""
        with self._lock:
            while len(self._states) > self.limits.max_conversations:
                self._evict_oldest()
            while len(self._states) > 1 and self.nbytes() > self.limits.max_bytes:
                self._evict_oldest()

    def _evict_oldest(self) -> None:
        self._states.popitem(last=False)
        self.evicted += 1
